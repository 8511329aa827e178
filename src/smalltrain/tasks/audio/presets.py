"""The audio presets and ``get_adaptive_config``: a ``TrainingConfig`` chosen for a dataset.

"auto" picks the preset by the folder's total duration (``choose_preset``), then the material
of the sounds, the device and the number of chunks adjust it; the user's overrides win.
Like ``config``, this module does not import torch at import time.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Protocol

from smalltrain.engine.config import apply_overrides, check
from smalltrain.engine.devices import resolve_device
from smalltrain.tasks.audio.config import PRESET_NAMES, TrainingConfig, is_number

TINY_MAX_S = 60.0  # "auto" picks tiny below one minute of audio...
SMALL_MAX_S = 600.0  # ...small below ten minutes, medium otherwise
CONTINUOUS_TIME_SHIFT_S = 0.05  # about 5 frames at hop 512 / 48 kHz
# model_width of each preset with latent_layout=flat (first layer, doubling), as before the
# temporal layout: the temporal widths would build 13-29M-parameter flat models
FLAT_WIDTHS = {"tiny": 16, "small": 32, "medium": 48}
STEP_SHARE = 0.8  # of the latent floats less the gain, about this share goes to the 12 steps
# Small data is scheduled in optimizer steps, not epochs: an epoch of a 24-file kit is 5 steps,
# and the model needs thousands to fit its training split (bench/README.md, "Real drum kits").
# "auto" raises a preset's epochs to reach MIN_STEPS and its patience to PATIENCE_STEPS;
# early stopping waits for MIN_STEPS, and the best epoch is chosen on the validation curve
# smoothed over SMOOTHING_STEPS (a split of 3-8 chunks makes one epoch's value mostly noise).
MIN_STEPS = {"tiny": 2000, "small": 2400, "medium": 0}
PATIENCE_STEPS = 600
SMOOTHING_STEPS = 100

# What each preset sets; every other field keeps its TrainingConfig default. All three use the
# temporal latent of 60 floats per 1 s chunk: 12 steps x 4, 11 for the whole chunk and the
# chunk's peak level (see tasks/audio/model/temporal.py), L1 + 0.5 x spectral convergence, beta 1e-4
# after a warm-up, the best checkpoint by validation SC and early stopping on it. The numbers
# were chosen by measurement (bench/quality.py, bench/README.md "Audio quality"): on 36 to 270
# training chunks the model needs thousands of optimizer steps to pass PCA, so the small
# presets run many short epochs at batch 8. tiny (< 1 min of audio) also overlaps chunks by
# half: twice the chunks from files over 1 s.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "epochs": 200,
        "batch_size": 8,
        "learning_rate": 1e-3,
        "chunk_hop_seconds": 0.5,
        "augmentation_expansion": 2,
        "latent_dim": 60,
        "latent_global": 11,
        "chunk_gain": True,
        "sc_weight": 0.5,
        "model_width": 128,
        "kl_beta_max": 1e-4,
        "kl_warmup_epochs": 40,
        "kl_schedule": "linear",
        "checkpoint_every": 20,
        "preview_every": 20,
        "early_stopping_patience": 40,
        "monitor": "val/sc",
    },
    "small": {
        "epochs": 120,
        "batch_size": 8,
        "learning_rate": 1e-3,
        "chunk_hop_seconds": None,
        "augmentation_expansion": 2,
        "latent_dim": 60,
        "latent_global": 11,
        "chunk_gain": True,
        "sc_weight": 0.5,
        "model_width": 128,
        "kl_beta_max": 1e-4,
        "kl_warmup_epochs": 24,
        "kl_schedule": "linear",
        "checkpoint_every": 10,
        "preview_every": 10,
        "early_stopping_patience": 30,
        "monitor": "val/sc",
    },
    "medium": {
        "epochs": 60,
        "batch_size": 16,
        "learning_rate": 1e-3,
        "chunk_hop_seconds": None,
        "augmentation_expansion": 1,
        "latent_dim": 60,
        "latent_global": 11,
        "chunk_gain": True,
        "sc_weight": 0.5,
        "model_width": 192,
        "kl_beta_max": 1e-4,
        "kl_warmup_epochs": 12,
        "kl_schedule": "linear",
        "checkpoint_every": 5,
        "preview_every": 5,
        "early_stopping_patience": 15,
        "monitor": "val/sc",
    },
}


class _Report(Protocol):
    """What get_adaptive_config reads from a dataset report (duck-typed)."""

    total_duration_s: float
    files: list[Any]


def choose_preset(total_duration_s: float) -> str:
    """The preset "auto" picks: tiny below 1 min of audio, small below 10 min, else medium."""
    if total_duration_s < TINY_MAX_S:
        return "tiny"
    return "small" if total_duration_s < SMALL_MAX_S else "medium"


def estimate_chunks(report: _Report, chunk_seconds: float, hop_seconds: float | None) -> int:
    """Roughly how many chunks a report yields (a short file still gives one padded chunk)."""
    hop = chunk_seconds if hop_seconds is None else hop_seconds
    durations: list[Any] = [getattr(f, "duration_s", None) for f in report.files]
    if not durations or not all(is_number(d) for d in durations):
        return max(len(report.files), math.floor(float(report.total_duration_s) / hop))
    return sum(1 + max(0, math.floor((d - chunk_seconds) / hop + 1e-9)) for d in durations)


def _material_time_shift(material: str) -> float:
    # time shifts help continuous sound and hurt onset-aligned one-shots (bench/README.md);
    # mixed folders get none, the safe side for their one-shots
    return CONTINUOUS_TIME_SHIFT_S if material == "continuous" else 0.0


def get_adaptive_config(
    report: _Report, device: str | None = None, preset: str = "auto", **overrides: Any
) -> TrainingConfig:
    """Choose a config for a dataset: preset by duration, then material, device, overrides.

    Args:
        report: a dataset report with ``total_duration_s``, ``files`` and optionally ``material``.
        device: "auto" (the default, also for None), "cpu", "cuda", "cuda:N" or "mps".
        preset: "auto" (by total duration), "tiny", "small" or "medium".
        **overrides: field values, typed or strings from the CLI ("3" for epochs); they win.

    Raises:
        ConfigError: an unknown preset, field or device, or an invalid value.
    """
    check("preset", preset, preset in ("auto", *PRESET_NAMES),
          f"must be auto or one of {', '.join(PRESET_NAMES)}")  # fmt: skip
    name = choose_preset(float(report.total_duration_s)) if preset == "auto" else preset
    resolved = resolve_device(device or "auto")
    base = TrainingConfig(**PRESETS[name], preset=name, device=resolved)
    # the gain's options are checked against the gain in ``trial`` below, not in the bare view
    latent = {k: v for k, v in overrides.items() if k not in _GAIN_OPTIONS}
    base = _fit_latent_parts(base, apply_overrides(_bare_latent(base), latent), overrides)
    trial = apply_overrides(base, overrides)  # typed view of the user's choices
    auto = _auto_values(report, name, base, trial)
    auto = {k: v for k, v in auto.items() if k not in overrides}
    config = apply_overrides(dataclasses.replace(base, **auto), overrides)
    if config.device != resolved:  # the user overrode the device: check it exists
        config = dataclasses.replace(config, device=resolve_device(config.device))
    return config


_GAIN_OPTIONS = ("gain_tilt", "gain_input")


def _bare_latent(config: TrainingConfig) -> TrainingConfig:
    """``config`` without the global code and gain, so any latent override validates alone."""
    return dataclasses.replace(config, latent_global=0, chunk_gain=False, gain_tilt=False,
                               gain_input=False)  # fmt: skip


def _fit_latent_parts(
    base: TrainingConfig, trial: TrainingConfig, overrides: dict[str, Any]
) -> TrainingConfig:
    """Fit the preset's global code and gain to the user's layout and latent size.

    The flat layout has neither. Another ``latent_dim`` keeps about ``STEP_SHARE`` of it on the
    12 temporal steps (a multiple of 12 floats), one float for the gain, the rest global; below
    14 floats there is no global code. The user's own ``latent_global``/``chunk_gain`` win;
    without the gain, the preset's options for it (``gain_tilt``) are off.
    """
    parts: dict[str, Any] = {}
    if trial.latent_layout == "flat":
        parts = {"latent_global": 0, "chunk_gain": False}
    elif trial.latent_dim != base.latent_dim:
        rest = trial.latent_dim - 1
        steps = 12 * max(1, round(rest * STEP_SHARE / 12))
        parts = {"latent_global": max(0, rest - steps) if rest > 12 else 0, "chunk_gain": rest > 0}
    parts = {k: v for k, v in parts.items() if k not in overrides}
    gain = trial.chunk_gain if "chunk_gain" in overrides else parts.get("chunk_gain", True)
    if not (gain and base.chunk_gain):  # no gain: the preset's options for it go too
        parts.update({k: False for k in _GAIN_OPTIONS if k not in overrides})
    return dataclasses.replace(base, **parts) if parts else base


def _auto_values(
    report: _Report, name: str, base: TrainingConfig, trial: TrainingConfig
) -> dict[str, Any]:
    """What the dataset and the device change in preset ``name``, before the user's overrides.

    ``base`` is the preset on the resolved device; ``trial`` is it with the overrides applied.
    """
    material = str(getattr(report, "material", None) or "auto")
    auto: dict[str, Any] = {}
    if material in ("onset", "continuous", "mixed"):
        auto["material"] = material
        auto["time_shift_max_s"] = _material_time_shift(material)
    batch = base.batch_size * (2 if base.device.startswith("cuda") else 1)
    chunks = estimate_chunks(report, trial.chunk_seconds, trial.chunk_hop_seconds)
    train_chunks = max(1, math.floor(chunks * (1.0 - trial.val_fraction)))
    auto["batch_size"] = max(1, min(batch, train_chunks))
    auto.update(_step_schedule(name, trial, train_chunks, auto["batch_size"]))
    if trial.latent_layout == "flat":  # a preset's width means every layer only when temporal
        auto["model_width"] = FLAT_WIDTHS[name]
    # Augmented items are built on the fly; loader workers hide that cost, but on a 2-core
    # machine a worker slows the whole epoch down (bench/README.md, "Data pipeline").
    cores = os.cpu_count() or 1
    if trial.augmentation and trial.augmentation_expansion > 1 and cores > 2:
        auto["num_workers"] = min(4, cores // 2)
    return auto


def _step_schedule(
    name: str, trial: TrainingConfig, train_chunks: int, batch: int
) -> dict[str, Any]:
    """Epochs, patience, the first step early stopping may stop at and the validation
    smoothing, from the preset's step counts and the steps an epoch will have."""
    items = train_chunks * (trial.augmentation_expansion if trial.augmentation else 1)
    per_epoch = max(1, math.ceil(items / batch))
    min_steps = MIN_STEPS[name]
    out: dict[str, Any] = {
        "epochs": max(trial.epochs, math.ceil(min_steps / per_epoch)),
        "early_stopping_min_steps": min_steps,
        "val_smoothing_steps": SMOOTHING_STEPS,
    }
    if trial.early_stopping_patience:
        steps = max(1, math.ceil(PATIENCE_STEPS / per_epoch))
        out["early_stopping_patience"] = max(trial.early_stopping_patience, steps)
    return out
