"""The audio task's typed, frozen TrainingConfig and its validation.

The presets and ``get_adaptive_config`` are in ``presets.py``. This module does not import torch
(the CLI reads configs cheaply); ``resolve_device`` (``engine.devices``) imports it when called.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from smalltrain.engine.config import check, unknown_field
from smalltrain.engine.devices import DEVICE_PATTERN

PRESET_NAMES = ("tiny", "small", "medium")  # their values are in presets.py
_TUPLE_FIELDS = ("speed_range", "gain_db_range", "noise_snr_db_range")
_AT_LEAST_1 = (
    "epochs", "batch_size", "latent_dim", "model_width", "kl_cycles", "augmentation_expansion",
    "checkpoint_every", "keep_last_checkpoints", "nan_skip_limit", "metrics_sync_every",
    "hop_length", "n_mels",
)  # fmt: skip
_AT_LEAST_0 = (
    "weight_decay", "warmup_epochs", "grad_clip_norm", "num_workers", "kl_beta_max",
    "kl_warmup_epochs", "sc_weight", "pitch_shift_semitones", "time_shift_max_s", "velocity_db",
    "early_stopping_patience", "early_stopping_min_delta", "early_stopping_min_steps",
    "val_smoothing_steps", "preview_every", "preview_count", "code_mixup",
    "max_rollbacks", "collapse_kl_threshold", "latent_frames", "latent_global",
)  # fmt: skip
_CHOICES: dict[str, tuple[str, ...]] = {
    "preset": ("custom", *PRESET_NAMES),
    "lr_schedule": ("cosine", "constant"),
    "kl_schedule": ("linear", "cyclical"),
    "material": ("auto", "onset", "continuous", "mixed"),
    "monitor": ("val/loss", "val/sc", "val/recon"),
    "latent_layout": ("temporal", "flat"),
}
# added with the temporal layout, and since: a saved config may lack them
_LAYOUT_FIELDS = {"latent_layout", "latent_frames", "latent_global", "chunk_gain"}
_LATER_FIELDS = {
    "gain_tilt", "gain_input", "velocity_db", "early_stopping_min_steps", "val_smoothing_steps",
    "linear_path", "code_mixup", "envelope_split",
}  # fmt: skip
MAX_AUTO_LATENT_FRAMES = 12  # latent_frames=0 picks a divisor of latent_dim up to this


@dataclass(frozen=True)
class TrainingConfig:
    """Everything one audio training run needs; validated on creation.

    Raises:
        ConfigError: a field breaks its rule, e.g. ``batch_size=0: must be >= 1``.
    """

    seed: int = 0
    # the train/validation split's seed; None: ``seed``. A sweep over seeds pins it, so that
    # every trial is judged on the same validation files.
    split_seed: int | None = None
    preset: str = "custom"  # the preset this config came from: custom | tiny | small | medium
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    # optimisation
    epochs: int = 50
    batch_size: int = 16
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    warmup_epochs: int = 0  # linear learning-rate warm-up
    grad_clip_norm: float = 1.0  # 0 = off
    # data
    chunk_seconds: float = 1.0
    chunk_hop_seconds: float | None = None  # None = chunk_seconds (no overlap)
    val_fraction: float = 0.2
    num_workers: int = 0
    # model
    latent_dim: int = 64  # floats per chunk
    latent_layout: Literal["temporal", "flat"] = "temporal"  # see tasks/audio/model/model.py
    latent_frames: int = 0  # temporal: latent steps per chunk; 0 = auto (a divisor, up to 12)
    latent_global: int = 0  # temporal: floats of latent_dim that code the whole chunk
    chunk_gain: bool = False  # temporal: one float of latent_dim is the chunk's peak level
    gain_tilt: bool = False  # with chunk_gain: the level also moves brightness (per mel band)
    gain_input: bool = False  # with chunk_gain: the decoder also sees the level (silence's depth)
    # temporal: the code is PCA of the chunk plus a learned part, the output PCA's decoding plus
    # a learned part (tasks/audio/temporal.py, LinearPath)
    linear_path: bool = False
    # temporal: the decoder adds a spectral shape per chunk and a gain curve per frame (in dB)
    envelope_split: bool = False
    model_width: int = 32  # temporal: channels of every layer; flat: of the first layer
    model_layers: int = 4  # flat only; the temporal layout's depth follows the frame count
    model_capacity: float | None = None
    # loss and KL annealing
    kl_beta_max: float = 1e-4
    kl_warmup_epochs: int = 10
    kl_schedule: Literal["linear", "cyclical"] = "linear"
    kl_cycles: int = 4
    sc_weight: float = 1.0
    # weight of a second reconstruction loss: the decoded mix of two chunks' codes against the
    # same mix of the two chunks (normalized mels); 0 = off
    code_mixup: float = 0.0
    # augmentation
    augmentation: bool = True
    augmentation_expansion: int = 2
    speed_range: tuple[float, float] = (0.9, 1.1)
    gain_db_range: tuple[float, float] = (-6.0, 6.0)
    noise_snr_db_range: tuple[float, float] = (20.0, 40.0)
    pitch_shift_semitones: float = 0.0  # max |shift|; 0 = off
    time_shift_max_s: float = 0.0  # max |shift| of a chunk's start; 0 = off
    velocity_db: float = 0.0  # half the chunks up to this much softer and duller; 0 = off
    material: Literal["auto", "onset", "continuous", "mixed"] = "auto"
    # checkpoints, previews, monitoring
    checkpoint_every: int = 5  # epochs
    keep_last_checkpoints: int = 3
    monitor: Literal["val/loss", "val/sc", "val/recon"] = "val/loss"  # best checkpoint, early stop
    early_stopping_patience: int = 0  # epochs without improvement of `monitor`; 0 = off
    early_stopping_min_delta: float = 0.0
    early_stopping_min_steps: int = 0  # optimizer steps before early stopping may stop a run
    # the best epoch and early stopping follow an exponential moving average of `monitor` with
    # this time constant in optimizer steps (0 = each epoch's own value): on a validation split
    # of a few chunks one epoch's value is mostly noise
    val_smoothing_steps: int = 0
    preview_every: int = 5  # epochs; 0 = off
    preview_count: int = 4
    # robustness
    nan_skip_limit: int = 3  # consecutive NaN/inf steps before a rollback
    max_rollbacks: int = 3
    metrics_sync_every: int = 10  # steps between device -> host metric reads
    overfit_warning_ratio: float = 0.2  # warn when (val - train) / train exceeds this
    collapse_kl_threshold: float = 0.5  # nats; a raw val KL below this warns of collapse
    tensorboard: bool = False
    # spectrogram (mirrors SpectrogramConfig; kept flat so this module stands alone)
    sample_rate: int = 48000
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    floor_db: float = -80.0

    def __post_init__(self) -> None:
        for name in _TUPLE_FIELDS:  # lists from JSON or YAML become tuples
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        self._check_types()
        for name in _AT_LEAST_1:
            check(name, getattr(self, name), getattr(self, name) >= 1, "must be >= 1")
        for name in _AT_LEAST_0:
            check(name, getattr(self, name), getattr(self, name) >= 0, "must be >= 0")
        for name, allowed in _CHOICES.items():
            value = getattr(self, name)
            check(name, value, value in allowed, f"must be one of {', '.join(allowed)}")
        self._check_ranges()

    def _check_types(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type in ("int", int):
                check(f.name, value, _is_int(value), "must be an integer")
            elif f.type in ("float", float):
                check(f.name, value, is_number(value), "must be a finite number")
            elif f.type in ("bool", bool):
                check(f.name, value, isinstance(value, bool), "must be true or false")
            elif f.type == "float | None":
                check(f.name, value, value is None or is_number(value), "must be a number or None")
        for name in _TUPLE_FIELDS:
            value = getattr(self, name)
            ok = isinstance(value, tuple) and len(value) == 2 and all(map(is_number, value))
            check(name, value, ok and value[0] <= value[1], "must be two numbers (low, high)")

    def _check_ranges(self) -> None:
        hop, cap = self.chunk_hop_seconds, self.model_capacity
        rules: list[tuple[str, bool, str]] = [
            ("device", bool(DEVICE_PATTERN.match(str(self.device))), "must be auto/cpu/cuda:N/mps"),
            ("learning_rate", self.learning_rate > 0, "must be > 0"),
            ("warmup_epochs", self.warmup_epochs < self.epochs, f"must be < epochs={self.epochs}"),
            ("chunk_seconds", 0.05 <= self.chunk_seconds <= 60, "must be in [0.05, 60] seconds"),
            ("chunk_hop_seconds", hop is None or hop > 0, "must be > 0, or None"),
            ("split_seed", self.split_seed is None or _is_int(self.split_seed),
             "must be an integer, or None for seed"),
            ("val_fraction", 0 <= self.val_fraction < 1, "must be in [0, 1)"),
            ("model_layers", 1 <= self.model_layers <= 6, "must be between 1 and 6"),
            ("model_capacity", cap is None or cap > 0, "must be > 0, or None for 1.0"),
            ("latent_frames", self.latent_layout == "flat" or self.latent_frames == 0
             or self.step_floats % self.latent_frames == 0,
             f"must divide {self._step_floats_name} exactly, or be 0 for auto"),
            ("latent_global", self.latent_layout == "temporal" or self.latent_global == 0,
             "must be 0 with latent_layout=flat"),
            ("chunk_gain", self.latent_layout == "temporal" or not self.chunk_gain,
             "must be false with latent_layout=flat"),
            ("gain_tilt", self.chunk_gain or not self.gain_tilt, "needs chunk_gain=true"),
            ("gain_input", self.chunk_gain or not self.gain_input, "needs chunk_gain=true"),
            ("linear_path", self.latent_layout == "temporal" or not self.linear_path,
             "must be false with latent_layout=flat"),
            ("envelope_split", self.latent_layout == "temporal" or not self.envelope_split,
             "must be false with latent_layout=flat"),
            ("latent_dim", self.step_floats >= 1,
             f"must exceed latent_global + chunk_gain ({self.latent_dim - self.step_floats})"),
            ("speed_range", self.speed_range[0] > 0, "must be > 0"),
            ("noise_snr_db_range", self.noise_snr_db_range[0] >= 0, "must be >= 0 dB"),
            ("pitch_shift_semitones", self.pitch_shift_semitones <= 12, "must be <= 12"),
            ("time_shift_max_s", self.time_shift_max_s < self.chunk_seconds,
             f"must be < chunk_seconds ({self.chunk_seconds})"),
            ("overfit_warning_ratio", self.overfit_warning_ratio > 0, "must be > 0"),
            ("sample_rate", self.sample_rate >= 8000, "must be >= 8000"),
            ("n_fft", self.n_fft >= 16, "must be >= 16"),
            ("hop_length", self.hop_length <= self.n_fft, f"must be <= n_fft ({self.n_fft})"),
            ("n_mels", self.n_mels <= self.n_fft // 2 + 1,
             f"must be <= n_fft // 2 + 1 ({self.n_fft // 2 + 1})"),
            ("floor_db", self.floor_db < 0, "must be a negative number of dB"),
        ]  # fmt: skip
        for name, ok, rule in rules:
            check(name, getattr(self, name), ok, rule)

    # --- derived values -----------------------------------------------------------------------
    @property
    def chunk_samples(self) -> int:
        """Samples per chunk at ``sample_rate``."""
        return round(self.chunk_seconds * self.sample_rate)

    @property
    def chunk_hop_samples(self) -> int:
        """Samples between chunk starts (= ``chunk_samples`` without overlap)."""
        hop = self.chunk_seconds if self.chunk_hop_seconds is None else self.chunk_hop_seconds
        return max(1, round(hop * self.sample_rate))

    @property
    def n_frames(self) -> int:
        """Mel frames per chunk (centred STFT): 94 for 1 s at 48 kHz, hop 512."""
        return self.chunk_samples // self.hop_length + 1

    def spectrogram_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``SpectrogramConfig``."""
        return {
            "sample_rate": self.sample_rate,
            "n_fft": self.n_fft,
            "hop_length": self.hop_length,
            "n_mels": self.n_mels,
            "floor_db": self.floor_db,
        }

    @property
    def step_floats(self) -> int:
        """Latent floats spread over the temporal steps (less the global code and the gain)."""
        return self.latent_dim - self.latent_global - int(self.chunk_gain)

    @property
    def _step_floats_name(self) -> str:
        if self.step_floats == self.latent_dim:
            return f"latent_dim ({self.latent_dim})"
        return f"latent_dim less latent_global and chunk_gain ({self.step_floats})"

    @property
    def resolved_latent_frames(self) -> int | None:
        """Latent steps per chunk of the temporal layout (None for flat); resolves 0 = auto."""
        if self.latent_layout == "flat":
            return None
        if self.latent_frames:
            return self.latent_frames
        # a divisor of latent_dim, at most 12 and at most the chunk's frames; of those, the one
        # that pads the chunk least (the encoder pads to frames * 2**k), then the most steps
        top = min(MAX_AUTO_LATENT_FRAMES, self.step_floats, self.n_frames)
        options = [f for f in range(1, top + 1) if self.step_floats % f == 0]
        return min(options, key=lambda f: (f * 2 ** temporal_steps_down(self.n_frames, f), -f))

    def model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``ConvVAE``."""
        return {
            "n_mels": self.n_mels,
            "n_frames": self.n_frames,
            "latent_dim": self.latent_dim,
            "width": self.model_width,
            "n_layers": self.model_layers,
            "capacity": self.model_capacity,
            "latent_frames": self.resolved_latent_frames,
            "global_dim": self.latent_global,
            "gain": self.chunk_gain,
            "gain_tilt": self.gain_tilt,
            "gain_input": self.gain_input,
            "linear_path": self.linear_path,
            "envelopes": self.envelope_split,
        }

    # --- serialisation --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (tuples become lists)."""
        d = dataclasses.asdict(self)
        for name in _TUPLE_FIELDS:
            d[name] = list(d[name])
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainingConfig:
        """Rebuild from ``to_dict()`` output; missing keys take their defaults.

        A complete dict without ``latent_layout`` was saved before the temporal layout existed
        and describes a flat model, so it is read as ``latent_layout="flat"`` (old runs resume).

        Raises:
            ConfigError: an unknown key, or a value that breaks a rule.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        d = dict(d)
        if "latent_layout" not in d and names - _LAYOUT_FIELDS - _LATER_FIELDS <= set(d):
            # a whole config saved before the temporal layout existed: its model was flat
            d["latent_layout"] = "flat"
        for key, value in d.items():
            if key not in names:
                raise unknown_field(key, value, names)
        return cls(**dict(d))

    def describe(self) -> str:
        """A short human summary for the CLI."""
        hop = "" if self.chunk_hop_seconds is None else f", hop {self.chunk_hop_seconds:g} s"
        if self.augmentation:
            aug = (
                f"augmentation x{self.augmentation_expansion} (speed {self.speed_range[0]:g}-"
                f"{self.speed_range[1]:g}, time shift {self.time_shift_max_s:g} s)"
            )
        else:
            aug = "no augmentation"
        stop = (
            f"early stop after {self.early_stopping_patience} epochs without {self.monitor} gain"
            + (f", not before step {self.early_stopping_min_steps}"
               if self.early_stopping_min_steps else "")
            if self.early_stopping_patience
            else "no early stopping"
        )  # fmt: skip
        if self.val_smoothing_steps:
            stop += f"; {self.monitor} smoothed over {self.val_smoothing_steps} steps"
        return "\n".join(
            [
                f"preset {self.preset} on {self.device}, seed {self.seed}",
                f"  {self.epochs} epochs x batch {self.batch_size}, lr {self.learning_rate:g} "
                f"({self.lr_schedule}), grad clip {self.grad_clip_norm:g}",
                f"  VAE {self._describe_latent()}, width {self.model_width}, "
                f"chunks {self.chunk_seconds:g} s{hop}",
                f"  loss L1 + {self.sc_weight:g} x SC + beta x KL, beta -> {self.kl_beta_max:g} "
                f"({self.kl_schedule} over {self.kl_warmup_epochs} epochs)",
                f"  material {self.material}: {aug}",
                f"  checkpoint every {self.checkpoint_every}, preview every {self.preview_every} "
                f"epochs; best by {self.monitor}; {stop}",
            ]
        )

    def _describe_latent(self) -> str:
        frames = self.resolved_latent_frames
        if frames is None:
            return f"flat latent {self.latent_dim} floats, {self.model_layers} layers"
        parts = [f"{frames} steps x {self.step_floats // frames}"]
        if self.latent_global:
            parts.append(f"{self.latent_global} for the whole chunk")
        if self.chunk_gain:
            parts.append("1 for its peak level")
        return f"temporal latent {self.latent_dim} floats ({' + '.join(parts)})"


def temporal_steps_down(n_frames: int, latent_frames: int) -> int:
    """Stride-2 steps of the temporal layout from ``n_frames`` down to ``latent_frames``."""
    return max(0, math.ceil(math.log2(max(n_frames, 1) / latent_frames)))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int (not a bool) or a finite float."""
    return _is_int(value) or (isinstance(value, float) and math.isfinite(value))
