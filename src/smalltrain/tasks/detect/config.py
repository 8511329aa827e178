"""The detection task's ``TrainingConfig``: the original fields and defaults plus what we need.

The original fields and defaults are kept as they are (``base_model="yolo11n.pt"``,
``epochs=100``, ``batch_size=16``, ``image_size=640``, ``patience=20``, ``freeze_layers=10``,
``lr0=0.001``, ``lrf=0.01``, ``model_name=""``, ``max_gpu_memory_percent=0.8``).

``optimizer`` is never Ultralytics' ``'auto'``: auto silently ignores ``lr0`` (Ultralytics issue
#8400). We accept ``"auto"`` on input and resolve it to a concrete optimizer here, so the config
records what really ran and ``lr0`` always applies.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from smalltrain.engine.config import check, unknown_field

__all__ = ["FIELD_HELP", "OLD_PRESET_NAMES", "OPTIMIZERS", "PRESETS", "TrainingConfig"]

#: The largest training image size (a 32000-px job took the machine's memory until killed).
MAX_IMAGE_SIZE = 4096

OPTIMIZERS = ("SGD", "MuSGD", "Adam", "Adamax", "AdamW", "NAdam", "RAdam", "RMSprop")
PRESETS = ("auto", "ultralytics", "classic")
#: Earlier spellings of presets, still read (old job records, scripts) but never shown.
OLD_PRESET_NAMES = {"seed": "classic"}
# What "auto" becomes: AdamW honours the small default lr0=0.001 well on small data.
AUTO_OPTIMIZER = "AdamW"

#: One line per field, for ``smalltrain config show detect``.
FIELD_HELP: dict[str, str] = {
    "dataset_name": "kept for older scripts; the dataset is given to train, so leave it empty",
    "base_model": "a local .pt to fine-tune, a name in the weights folder, or a model .yaml "
    "(from scratch)",
    "epochs": "passes over the training images (patience may stop sooner)",
    "batch_size": "images per batch",
    "image_size": "training image size in pixels (a multiple of 32)",
    "patience": "validations without improvement before stopping early (0 = never)",
    "val_every": "validate every N epochs (0 = auto: N from the measured train and validation "
    "times; the last epoch is always validated)",
    "freeze_layers": "first layers kept frozen (the backbone of a pretrained model; 0 = none)",
    "lr0": "initial learning rate",
    "lrf": "final learning rate as a fraction of lr0",
    "model_name": "kept for older scripts; use train --name instead",
    "max_gpu_memory_percent": "fraction of GPU memory the job may use (0-1)",
    "optimizer": "SGD, MuSGD, Adam, Adamax, AdamW, NAdam, RAdam or RMSprop ('auto' = AdamW)",
    "seed": "random seed",
    "workers": "data-loading worker processes (0 = in the training process)",
    "device": "where to train: '' (the job's device), cpu, cuda, cuda:N or mps",
    "nbs": "nominal batch size: gradients accumulate up to it (auto: = batch_size)",
    "warmup_epochs": "epochs of learning-rate warm-up",
    "close_mosaic": "final epochs trained without mosaic augmentation",
    "preset": "the preset the values came from: auto, ultralytics or classic (the original "
    "defaults: yolo11n.pt, 100 epochs, batch 16, 640 px, 10 frozen layers)",
}


@dataclass(frozen=True)
class TrainingConfig:
    """Detection training config (frozen, validated on creation).

    Not to be confused with ``smalltrain.tasks.audio.TrainingConfig``.
    """

    dataset_name: str = ""
    base_model: str = "yolo11n.pt"
    epochs: int = 100
    batch_size: int = 16
    image_size: int = 640
    patience: int = 20
    freeze_layers: int = 10
    lr0: float = 0.001
    lrf: float = 0.01
    model_name: str = ""
    max_gpu_memory_percent: float = 0.8
    optimizer: str = "AdamW"
    seed: int = 0
    workers: int = 0
    device: str = ""  # "" = the job's device
    nbs: int = 64  # Ultralytics' nominal batch size: gradients accumulate up to it
    warmup_epochs: float = 3.0
    close_mosaic: int = 10
    preset: str = "classic"  # which preset produced the values: auto | ultralytics | classic
    val_every: int = 1  # validate every N epochs; 0 = auto (see presets.val_interval)

    def __post_init__(self) -> None:
        if self.optimizer.lower() == "auto":
            object.__setattr__(self, "optimizer", AUTO_OPTIMIZER)
        object.__setattr__(self, "preset", OLD_PRESET_NAMES.get(self.preset, self.preset))
        canon = {o.lower(): o for o in OPTIMIZERS}
        check(
            "optimizer",
            self.optimizer,
            self.optimizer.lower() in canon,
            f"must be one of {', '.join(OPTIMIZERS)} ('auto' becomes {AUTO_OPTIMIZER})",
        )
        object.__setattr__(self, "optimizer", canon[self.optimizer.lower()])
        check("base_model", self.base_model, bool(self.base_model.strip()), "must not be empty")
        check("epochs", self.epochs, self.epochs >= 1, "must be >= 1")
        check("batch_size", self.batch_size, self.batch_size >= 1, "must be >= 1")
        check(
            "image_size",
            self.image_size,
            32 <= self.image_size <= MAX_IMAGE_SIZE and self.image_size % 32 == 0,
            f"must be a multiple of 32 from 32 to {MAX_IMAGE_SIZE} (YOLO's largest stride is 32; "
            "a larger size needs more memory than a machine has, and the job would be killed "
            "for it), e.g. 320, 640",
        )
        self._check_rest()

    def _check_rest(self) -> None:
        check("patience", self.patience, self.patience >= 0, "must be >= 0 (0 = no early stop)")
        check("freeze_layers", self.freeze_layers, self.freeze_layers >= 0, "must be >= 0")
        check("lr0", self.lr0, 0 < self.lr0 <= 1, "must be in (0, 1]")
        check("lrf", self.lrf, 0 < self.lrf <= 1, "must be in (0, 1]")
        check(
            "max_gpu_memory_percent",
            self.max_gpu_memory_percent,
            0 < self.max_gpu_memory_percent <= 1,
            "must be a fraction in (0, 1], e.g. 0.8 for 80%",
        )
        check("workers", self.workers, self.workers >= 0, "must be >= 0")
        check("nbs", self.nbs, self.nbs >= 1, "must be >= 1")
        check("warmup_epochs", self.warmup_epochs, self.warmup_epochs >= 0, "must be >= 0")
        check("close_mosaic", self.close_mosaic, self.close_mosaic >= 0, "must be >= 0")
        check("val_every", self.val_every, self.val_every >= 0, "must be >= 0 (0 = auto)")
        check("preset", self.preset, self.preset in PRESETS, f"must be one of {PRESETS}")
        for name in ("model_name", "dataset_name"):
            value = getattr(self, name)
            check(name, value, "/" not in value and "\\" not in value, "must not contain '/'")

    @property
    def from_scratch(self) -> bool:
        """True when ``base_model`` is a model .yaml (no pretrained weights)."""
        return self.base_model.lower().endswith((".yaml", ".yml"))

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of every field (JSON/YAML friendly)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingConfig:
        """Rebuild a validated config; unknown keys are an error that names them.

        Raises:
            ConfigError: an unknown field or an invalid value.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise unknown_field(unknown[0], data[unknown[0]], names)
        return cls(**dict(data))

    def ultralytics_args(self) -> dict[str, Any]:
        """The ``YOLO.train`` keyword arguments this config stands for (no paths, no device)."""
        return {
            "epochs": self.epochs,
            "batch": self.batch_size,
            "imgsz": self.image_size,
            "patience": self.patience if self.patience > 0 else self.epochs + 1,
            "freeze": self.freeze_layers or None,
            "lr0": self.lr0,
            "lrf": self.lrf,
            "optimizer": self.optimizer,
            "seed": self.seed,
            "deterministic": True,
            "workers": self.workers,
            "nbs": self.nbs,
            "warmup_epochs": self.warmup_epochs,
            "close_mosaic": min(self.close_mosaic, self.epochs),
        }
