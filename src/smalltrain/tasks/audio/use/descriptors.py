"""Measured descriptors of a sound, computed with numpy on its log-mel spectrogram.

Each is one number per sound, measured on a dB log-mel ``[B, n_mels, T]`` (a file's own, or what
the model decodes, so that the model's output is measured without rendering audio):

- ``brightness``: the spectral centroid in Hz (mel band centres weighted by power).
- ``decay``: seconds after the loudest frame that the sound stays within ``DECAY_DB`` of it
  (a soft count, so that a small change of the sound is a small change of the number).
- ``noisiness``: spectral flatness over the mel bands (geometric over arithmetic mean of the
  power, 0 = one band, 1 = flat), the mean over frames weighted by their energy.
- ``level``: the loudest frame's energy in dB (reference power 1.0, as ``log_mel``).

The floor of the spectrogram (``floor_db``) counts as silence: frames near it weigh nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np

from smalltrain.tasks.audio.data.spectrogram import SpectrogramConfig, slaney_mel_basis

__all__ = [
    "DECAY_DB",
    "DESCRIPTORS",
    "UNITS",
    "band_centres",
    "describe",
    "describe_one",
    "format_value",
    "plain",
]

#: The descriptors, in the order every table shows them.
DESCRIPTORS = ("brightness", "decay", "noisiness", "level")
#: How each is written.
UNITS = {"brightness": "Hz", "decay": "s", "noisiness": "", "level": "dB"}
#: ``decay`` counts the frames within this many dB of the loudest one.
DECAY_DB = 20.0
_SOFT_DB = 1.5  # the width of the soft threshold of ``decay``


@functools.lru_cache(maxsize=16)
def band_centres(config: SpectrogramConfig) -> np.ndarray:
    """The centre frequency in Hz of each mel band ``[n_mels]`` (its filter's mean)."""
    basis = slaney_mel_basis(config)
    freqs = np.fft.rfftfreq(config.n_fft, 1.0 / config.sample_rate)
    return (basis @ freqs) / np.maximum(basis.sum(axis=1), 1e-12)


def _soft_above(x: np.ndarray, threshold: Any) -> np.ndarray:
    return np.asarray(0.5 * (1.0 + np.tanh((x - threshold) / (2 * _SOFT_DB))))


def describe(db: Any, config: SpectrogramConfig) -> dict[str, np.ndarray]:
    """Every descriptor of each sound of a dB log-mel ``[B, n_mels, T]`` (numpy or torch).

    Returns ``{name: [B] float64}`` for the names of ``DESCRIPTORS``.
    """
    x = np.asarray(db.detach().cpu().numpy() if hasattr(db, "detach") else db, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    floor = config.floor_db
    power = np.power(10.0, np.maximum(x, floor) / 10.0) - 10.0 ** (floor / 10.0)
    power = np.maximum(power, 0.0) + 1e-20
    energy = power.sum(axis=1)  # [B, T]
    energy_db = 10.0 * np.log10(energy)
    level = energy_db.max(axis=1)
    weights = energy / energy.sum(axis=1, keepdims=True)
    centres = band_centres(config)
    centroid = (power * centres[None, :, None]).sum(axis=1) / energy
    flatness = np.exp(np.log(power).mean(axis=1)) / (energy / power.shape[1])
    peak = energy_db.argmax(axis=1)
    after = np.arange(x.shape[2])[None, :] >= peak[:, None]
    above = _soft_above(energy_db, level[:, None] - DECAY_DB)
    above *= _soft_above(energy_db, floor)  # frames at the floor are silence, never "decay"
    decay = (above * after).sum(axis=1) * config.hop_length / config.sample_rate
    return {
        "brightness": (centroid * weights).sum(axis=1),
        "decay": decay,
        "noisiness": (flatness * weights).sum(axis=1),
        "level": level,
    }


def describe_one(db: Any, config: SpectrogramConfig) -> dict[str, float]:
    """The descriptors of one sound's dB log-mel ``[n_mels, T]`` as plain floats."""
    return {k: float(v[0]) for k, v in describe(db, config).items()}


def format_value(name: str, value: float) -> str:
    """A value as tables write it: ``1234 Hz``, ``0.420 s``, ``0.080``, ``-12.0 dB``."""
    if name == "brightness":
        return f"{value:.0f} Hz"
    if name == "decay":
        return f"{value:.3f} s"
    if name == "level":
        return f"{value:.1f} dB"
    return f"{value:.3f}"


def plain(values: Mapping[str, Any]) -> dict[str, float]:
    """Descriptor values as plain floats (for JSON)."""
    return {k: float(values[k]) for k in DESCRIPTORS if k in values}
