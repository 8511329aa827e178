"""A starting phase for Griffin-Lim from the magnitude alone: phase-gradient integration (PGHI).

Griffin-Lim from random phase smears transients: every frequency of a drum's attack starts at
its own random phase, and 32 projections do not line them up again. For a Gaussian window the
STFT's phase derivatives follow from its log-magnitude (Průša, Balazs and Søndergaard, "A
noniterative method for reconstruction of phase from STFT magnitude", 2017). With our STFT
(frames centred on ``n * hop``, phase measured from the frame's start, ``X = (-1)^m Y``):

- along time (instantaneous frequency): ``dφ/dn = 2π hop m / N + (hop N / λ) ∂_m log|X|``;
- along frequency (local group delay): ``dφ/dm = -(λ / (hop N)) ∂_n log|X| - π``;

with ``N = n_fft`` and ``λ = 0.25645 N²``, the Gaussian that best matches a Hann window.

The published method integrates these from the largest coefficient outwards with a heap; that is
a Python loop over every bin, far too slow for previews. This version is vectorised over bins
and loops over frames only: a bin takes the frequency-integrated phase at the frame where its
energy peaks after a rise (an onset: there the group delay is measured best, at the centre of
the window) and otherwise continues its own phase in time, the frequency integral anchored to
the continuing bins (a magnitude-weighted circular mean). On a click it brings Griffin-Lim's
error after 16 iterations from 0.26 to 0.04 spectral convergence, on a sine from 0.12 to 0.04
(bench/README.md, "Audio quality", "The inversion ceiling").
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["pghi_phase"]

LAMBDA_HANN = 0.25645  # λ / N² of the Gaussian closest to a Hann window of N samples
_TOLERANCE_DB = 50.0  # bins this far below the loudest are treated as silence
_RISE = 2.0  # an onset: the magnitude rose this much within half a window


def _derivative(x: Tensor, dim: int) -> Tensor:
    """Central differences along ``dim`` (one-sided at the ends); needs a length >= 2."""
    out = torch.empty_like(x)
    n = x.shape[dim]
    mid = (x.narrow(dim, 2, n - 2) - x.narrow(dim, 0, n - 2)) / 2
    out.narrow(dim, 1, n - 2).copy_(mid)
    out.narrow(dim, 0, 1).copy_(x.narrow(dim, 1, 1) - x.narrow(dim, 0, 1))
    out.narrow(dim, n - 1, 1).copy_(x.narrow(dim, n - 1, 1) - x.narrow(dim, n - 2, 1))
    return out


def pghi_phase(magnitude: Tensor, n_fft: int, hop: int) -> Tensor:
    """A phase ``[B, T, F]`` for an STFT magnitude ``[B, T, F]`` (frames first, Hann window).

    Args:
        magnitude: nonnegative STFT magnitude, ``F = n_fft // 2 + 1``.
        n_fft: the window length ``N``.
        hop: samples between frames.
    """
    mag = magnitude.float()
    n_batch, n_frames, n_bins = mag.shape
    if n_frames < 3 or n_bins < 3:
        return torch.zeros_like(mag)
    lam = LAMBDA_HANN * n_fft**2
    peak = mag.amax(dim=(1, 2), keepdim=True)
    floor = peak * 10 ** (-_TOLERANCE_DB / 20)
    logs = torch.log(torch.maximum(mag, floor).clamp_min(1e-30))
    d_n = _derivative(logs, 1)
    d_n[:, 0] = d_n[:, 1]  # frame 0 sees the reflect padding, not the sound's own rise
    bins = torch.arange(n_bins, dtype=mag.dtype, device=mag.device)
    t_grad = 2 * math.pi * hop * bins / n_fft + (hop * n_fft / lam) * _derivative(logs, 2)
    f_grad = -(lam / (hop * n_fft)) * d_n  # of Y = (-1)^m X; the -π is added at the end
    f_int = torch.zeros_like(f_grad)
    f_int[:, :, 1:] = torch.cumsum((f_grad[:, :, 1:] + f_grad[:, :, :-1]) / 2, dim=2)
    live = mag > floor
    reach = max(1, n_fft // (2 * hop))  # frames in half a window
    after = torch.cat([mag[:, 1:], mag[:, -1:]], dim=1)
    phase = torch.empty_like(mag)
    phase[:, 0] = f_int[:, 0]
    for n in range(1, n_frames):
        continued = phase[:, n - 1] + (t_grad[:, n - 1] + t_grad[:, n]) / 2
        here = mag[:, n]
        onset = (here >= mag[:, n - 1]) & (here >= after[:, n])
        onset &= here > _RISE * mag[:, max(0, n - reach) : n].amin(dim=1)
        onset |= ~live[:, n - 1]
        weight = here * ~onset
        diff = continued - f_int[:, n]
        anchor = torch.atan2((weight * diff.sin()).sum(1, keepdim=True),
                             (weight * diff.cos()).sum(1, keepdim=True))  # fmt: skip
        phase[:, n] = torch.where(onset, f_int[:, n] + anchor, continued)
    return phase - math.pi * bins
