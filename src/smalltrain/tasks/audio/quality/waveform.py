"""What the ear hears: a multi-resolution STFT distance between two waveforms.

The mel metrics (``metrics.py``) score the model's spectrogram before it becomes sound. This
module scores the sound itself, after the mel-to-audio inversion, so that a listener's
complaints (smeared transients, phasey tails) show in a number.

``mrstft_distance(pred, target)`` analyses both waveforms with three STFTs (Hann windows of
512, 1024 and 2048 samples at hops of a quarter window: 10.7 to 42.7 ms at 48 kHz, short enough
to see a drum's attack and long enough to resolve its pitch) and averages over them:

- ``sc``: spectral convergence ``||S - S_hat||_F / ||S||_F`` on linear STFT magnitude;
- ``log_mag_db``: the mean absolute difference of ``20 log10`` magnitudes, both floored at
  ``FLOOR_DB`` (80 dB) below the target's loudest bin, so silence against faint noise is not
  scored beyond what a listener could hear and the score does not depend on the file's level.

Magnitude only: two sounds that differ in phase alone score 0, as the ear mostly hears them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["FLOOR_DB", "RESOLUTIONS", "WaveformScores", "mrstft_distance"]

RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))  # (n_fft, hop)
FLOOR_DB = 80.0
_EPS = 1e-12


@dataclass(frozen=True)
class WaveformScores:
    """Multi-resolution STFT distance of one sound (or a mean over several)."""

    sc: float
    log_mag_db: float

    def to_dict(self) -> dict[str, float]:
        return {"sc": self.sc, "log_mag_db": self.log_mag_db}


def _magnitude(wave: Tensor, n_fft: int, hop: int) -> Tensor:
    window = torch.hann_window(n_fft, dtype=torch.float32)
    if wave.shape[-1] < n_fft:  # torch.stft's reflect padding needs a longer signal
        wave = torch.nn.functional.pad(wave, (0, n_fft - wave.shape[-1]))
    spec = torch.stft(wave, n_fft, hop, window=window, center=True, return_complex=True)
    return spec.abs() / window.sum()


def mrstft_distance(pred: Tensor, target: Tensor) -> WaveformScores:
    """The multi-resolution STFT distance of ``pred`` from ``target`` (mono, same rate).

    The shorter signal is zero-padded to the longer one's length, so a reconstruction that
    stops early is scored as silence where the original still sounds.

    Raises:
        ValueError: either input is not a 1-D waveform.
    """
    if pred.dim() != 1 or target.dim() != 1:
        raise ValueError(
            f"expected two mono waveforms [N], got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    n = max(pred.shape[0], target.shape[0], 1)
    p = torch.nn.functional.pad(pred.float().cpu(), (0, n - pred.shape[0]))
    t = torch.nn.functional.pad(target.float().cpu(), (0, n - target.shape[0]))
    scs, logs = [], []
    for n_fft, hop in RESOLUTIONS:
        mp, mt = _magnitude(p, n_fft, hop), _magnitude(t, n_fft, hop)
        err = torch.linalg.vector_norm(mt - mp)
        scs.append(float(err / torch.linalg.vector_norm(mt).clamp_min(_EPS)))
        floor = float(mt.max()) * 10 ** (-FLOOR_DB / 20) + _EPS
        db_p = 20 * torch.log10(mp.clamp_min(floor))
        db_t = 20 * torch.log10(mt.clamp_min(floor))
        logs.append(float((db_p - db_t).abs().mean()))
    return WaveformScores(sum(scs) / len(scs), sum(logs) / len(logs))
