"""Adaptive presets: a detection ``TrainingConfig`` chosen from the dataset and the device.

Presets:

- ``"auto"``: tuned for 50 to 500 images (see the reasoning in :func:`auto_values`);
- ``"ultralytics"``: Ultralytics' defaults, with ``optimizer='auto'`` resolved the way
  Ultralytics resolves it for small runs (AdamW, ``lr0 = 0.002 * 5 / (4 + nc)``) so it is
  recorded instead of happening silently;
- ``"classic"``: the original ``TrainingConfig`` defaults as they are (yolo11n.pt, 100
  epochs, batch 16, 640 px, 10 frozen layers); ``"seed"`` is its old, hidden spelling.

User overrides always win over preset values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from smalltrain import paths
from smalltrain.engine.config import apply_overrides
from smalltrain.errors import ConfigError, WeightsNotFound
from smalltrain.tasks.detect.config import OLD_PRESET_NAMES, PRESETS, TrainingConfig
from smalltrain.tasks.detect.inspect import DetectionReport
from smalltrain.tasks.detect.offline import resolve_base_model

__all__ = [
    "SCRATCH_MODEL",
    "auto_values",
    "batch_for_device",
    "build_config",
    "config_notes",
    "imgsz_for",
    "ultralytics_values",
    "val_interval",
    "weights_available",
]

# Optimizer steps a run should get. Measured on BCCD (205 train images, batch 16, 13 steps per
# epoch): from a pretrained .pt, 30 epochs (~390 steps) already match or beat 100 epochs on the
# val split's mAP50; from scratch it kept improving to epoch 100 (1300 steps).
_TARGET_STEPS = {"pretrained": 400, "scratch": 1300}
_MIN_EPOCHS = {"pretrained": 20, "scratch": 30}

#: Validation may add at most this fraction of the training time of the epochs it covers.
VAL_BUDGET = 0.2
#: "Small data" for validating every k epochs: up to this many training images.
SMALL_TRAIN = 1000


def val_interval(train_s: float, val_s: float, epochs: int, budget: float = VAL_BUDGET) -> int:
    """Validate every k epochs: the smallest k with ``val_s <= budget * k * train_s``.

    ``train_s`` and ``val_s`` are the last measured epoch's training loop and validation times;
    the validation time grows with the val split's size, the training time with the train
    split's, so a val split that is large next to the train split gets a larger k. With
    ``budget = 0.2`` validation adds at most ~20% to training. k is at most ``epochs // 10``
    (at least ~10 validations per run, so the best epoch is found within a tenth of the run)
    and at most 10.
    """
    cap = max(1, min(10, epochs // 10))
    if train_s <= 0 or not math.isfinite(val_s / train_s):
        return 1
    return int(min(cap, max(1, math.ceil(val_s / (budget * train_s)))))


def _lr_fit(nc: int) -> float:
    """Ultralytics' own fitted AdamW lr for ``optimizer='auto'`` on short runs."""
    return round(0.002 * 5 / (4 + nc), 6)


def imgsz_for(report: DetectionReport, cap: int = 640) -> int:
    """The median image's longest side rounded up to a multiple of 32, at most ``cap``."""
    longest = max(report.median_size) or cap
    return int(min(cap, max(64, math.ceil(longest / 32) * 32)))


def _device_memory_gb(device: str) -> float | None:
    if not device.startswith("cuda") and not device.isdigit():
        return None
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        index = int(device.split(":")[1]) if ":" in device else int(device or 0)
        return float(torch.cuda.get_device_properties(index).total_memory) / 2**30
    except (ImportError, RuntimeError, ValueError, AssertionError):
        return None


def batch_for_device(device: str, imgsz: int, n_train: int, memory_fraction: float = 0.8) -> int:
    """A batch size that fits the device and still gives at least two batches per epoch.

    CPU and MPS get 8 (compute-bound: smaller batches mean more optimizer steps per epoch).
    On CUDA, about 1 GB of usable memory per 4 images at 640 px for a small YOLO, capped at 64.
    """
    gb = _device_memory_gb(device)
    if gb is None:
        batch = 8
    else:
        per_image_gb = 0.25 * (imgsz / 640) ** 2
        batch = int(min(64, max(2, gb * memory_fraction / per_image_gb)))
        batch = 2 ** int(math.log2(batch))
    return int(max(2, min(batch, max(2, n_train // 2))))


def auto_values(
    report: DetectionReport,
    device: str,
    pretrained: bool,
    batch_size: int | None = None,
    epochs: int | None = None,
) -> dict[str, Any]:
    """Preset values for small data.

    - ``nbs`` = batch size: Ultralytics accumulates gradients up to ``nbs=64``, which leaves
      ~3 optimizer steps per epoch on 200 images; ``nbs=16`` measured clearly better on BCCD.
    - epochs from a target number of optimizer steps: ~400 from a .pt (30 epochs of BCCD at
      batch 16 matched 100 there), 1300 from scratch; at least 20 (.pt) or 30 (scratch).
    - ``val_every=0`` (auto) on small data (up to 1000 train images): validation every k
      epochs, k measured during the run (:func:`val_interval`); on more data, every epoch.
    - ``patience`` counted in validations: a sixth (.pt) or a fifth (scratch) of the epochs,
      at least 5 (.pt) or 10 (scratch) validations without improvement.
    - warm-up of about 50 steps (at least half an epoch, at most 10% of the run).
    - ``close_mosaic`` 10% of the epochs (1 to 10).
    - ``freeze_layers=10`` (the backbone) only from pretrained weights on fewer than 100 train
      images; with more, fine-tuning everything measured as good or better.
    - ``lr0`` Ultralytics' fitted AdamW rate for this class count, now actually applied.

    A ``batch_size`` or ``epochs`` the user chose is used to derive the other values.
    """
    n_train = max(1, report.images_per_split.get("train", 0))
    imgsz = imgsz_for(report)
    batch = int(batch_size or batch_for_device(device, imgsz, n_train))
    steps_per_epoch = math.ceil(n_train / batch)
    start = "pretrained" if pretrained else "scratch"
    epochs = int(
        epochs or min(300, max(_MIN_EPOCHS[start], round(_TARGET_STEPS[start] / steps_per_epoch)))
    )
    warmup = min(max(0.5, 50 / steps_per_epoch), max(1.0, 0.1 * epochs))
    return {
        "epochs": epochs,
        "batch_size": batch,
        "image_size": imgsz,
        "nbs": batch,
        "patience": max(5, epochs // 6) if pretrained else max(10, epochs // 5),
        "val_every": 0 if n_train <= SMALL_TRAIN else 1,
        "warmup_epochs": round(warmup, 2),
        "close_mosaic": int(min(10, max(1, epochs // 10))),
        "freeze_layers": 10 if pretrained and n_train < 100 else 0,
        "optimizer": "AdamW",
        "lr0": min(0.002, max(0.0005, _lr_fit(len(report.names)))),
        "lrf": 0.01,
    }


def ultralytics_values(report: DetectionReport) -> dict[str, Any]:
    """Ultralytics' defaults, with its ``optimizer='auto'`` choice made explicit."""
    return {
        "epochs": 100,
        "batch_size": 16,
        "image_size": 640,
        "nbs": 64,
        "patience": 100,
        "warmup_epochs": 3.0,
        "close_mosaic": 10,
        "freeze_layers": 0,
        "optimizer": "AdamW",
        "lr0": _lr_fit(len(report.names)),
        "lrf": 0.01,
        "val_every": 1,
    }


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None  # left for apply_overrides to reject with a clear message


#: What the auto preset trains when no pretrained weights are on disk: the same architecture
#: as the default ``yolo11n.pt``, built from Ultralytics' bundled model config (no download).
SCRATCH_MODEL = "yolo11n.yaml"


def weights_available(name: str) -> bool:
    """Whether ``name`` is a .pt smalltrain can load without a download (a path, or a file in
    the home's weights folder)."""
    try:
        resolve_base_model(name, paths.home(create=False))
    except WeightsNotFound:
        return False
    return True


def _choose_base_model(preset: str, overrides: Mapping[str, Any]) -> str:
    """The base model: the user's; else the default .pt if it is on disk; else (auto preset)
    ``SCRATCH_MODEL``. A .pt that is not on disk fails here, before any job is queued.

    Raises:
        WeightsNotFound: the weights named (or the default, outside the auto preset) are
            not on disk; the message says how to fine-tune or to train from scratch.
    """
    given = overrides.get("base_model")
    name = str(given if given is not None else TrainingConfig.base_model)
    if given is None and preset == "auto" and not weights_available(name):
        return SCRATCH_MODEL
    resolve_base_model(name, paths.home(create=False))  # raises WeightsNotFound with what to do
    return name


def config_notes(config: TrainingConfig, overrides: Mapping[str, Any]) -> list[str]:
    """One-line notes on choices the user did not make, e.g. training from scratch."""
    if "base_model" in overrides or config.base_model != SCRATCH_MODEL:
        return []
    default = TrainingConfig.base_model
    return [
        f"no pretrained weights on disk ({default} is not in the weights folder): training "
        f"{SCRATCH_MODEL} from scratch with the small-data recipe ({config.epochs} epochs). To "
        f"fine-tune instead, pass --set base_model=PATH.pt, or register a .pt once with "
        f"`smalltrain weights add FILE` and pass --set base_model=NAME.pt"
    ]


def build_config(
    report: DetectionReport, device: str, preset: str = "auto", **overrides: Any
) -> TrainingConfig:
    """A validated config from a preset and the user's overrides (overrides win).

    Without ``base_model``, the auto preset fine-tunes ``yolo11n.pt`` when it is on disk and
    otherwise trains ``yolo11n.yaml`` from scratch with the from-scratch recipe (see
    ``config_notes``); nothing is ever downloaded.

    Raises:
        ConfigError: an unknown preset or field, or an invalid value.
        WeightsNotFound: ``base_model`` names a .pt that is not on disk.
    """
    preset = OLD_PRESET_NAMES.get(preset, preset)
    if preset not in PRESETS:
        raise ConfigError("preset", preset, f"must be one of {', '.join(PRESETS)}")
    base_model = _choose_base_model(preset, overrides)
    pretrained = not base_model.lower().endswith((".yaml", ".yml"))
    values: Mapping[str, Any]
    if preset == "auto":
        values = auto_values(
            report,
            device,
            pretrained,
            _int(overrides.get("batch_size")),
            _int(overrides.get("epochs")),
        )
    elif preset == "ultralytics":
        values = ultralytics_values(report)
    else:
        values = {}
    config = TrainingConfig(preset=preset, base_model=base_model, **values)
    return apply_overrides(config, {k: v for k, v in overrides.items() if v is not None})
