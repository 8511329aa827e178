"""Fréchet distance between Gaussians fitted to log-mel frames (generation quality).

``mel_statistics`` treats every *frame* of every mel as one ``n_mels``-dimensional sample (in dB)
and returns its mean and covariance. Frames rather than per-chunk means: a handful of sounds
already give hundreds of frames, enough to estimate a 128 x 128 covariance, while per-chunk means
would need more than 128 sounds to be full rank. The statistic therefore compares the spectral
content of single frames (timbre and level), as FAD does with per-frame embeddings, not the
temporal shape of sounds.

``frechet_distance`` is
``||mu1 - mu2||^2 + tr(C1) + tr(C2) - 2 tr((C1^1/2 C2 C1^1/2)^1/2)``, computed in float64
with ``torch.linalg.eigh`` on symmetric matrices only (no scipy), so it is stable for singular
or nearly singular covariances.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["frechet_distance", "mel_statistics"]


def _sqrt_psd(mat: Tensor) -> Tensor:
    """Symmetric square root of a symmetric PSD matrix (negative round-off clamped to 0)."""
    sym = (mat + mat.T) / 2
    evals, evecs = torch.linalg.eigh(sym)
    return (evecs * evals.clamp_min(0.0).sqrt()) @ evecs.T


def frechet_distance(mu1: Tensor, cov1: Tensor, mu2: Tensor, cov2: Tensor) -> float:
    """Fréchet (2-Wasserstein squared) distance between ``N(mu1, cov1)`` and ``N(mu2, cov2)``.

    Uses ``tr sqrt(C1 C2) = tr sqrt(C1^1/2 C2 C1^1/2)``; both square roots are of symmetric PSD
    matrices, taken by eigendecomposition in float64.

    Raises:
        ValueError: the shapes do not match.
    """
    m1, m2 = mu1.double().flatten(), mu2.double().flatten()
    c1, c2 = cov1.double(), cov2.double()
    d = m1.shape[0]
    if m2.shape[0] != d or c1.shape != (d, d) or c2.shape != (d, d):
        raise ValueError(
            f"mismatched statistics: mu {tuple(mu1.shape)}/{tuple(mu2.shape)}, "
            f"cov {tuple(cov1.shape)}/{tuple(cov2.shape)}"
        )
    root1 = _sqrt_psd(c1)
    middle = root1 @ ((c2 + c2.T) / 2) @ root1
    evals = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0.0)
    trace_cross = evals.sqrt().sum()
    value = (m1 - m2).square().sum() + torch.trace(c1) + torch.trace(c2) - 2.0 * trace_cross
    return max(0.0, float(value))


def mel_statistics(mels: Tensor) -> tuple[Tensor, Tensor]:
    """Mean ``[n_mels]`` and covariance ``[n_mels, n_mels]`` (float64) of all mel frames.

    Args:
        mels: log-mels in dB, ``[N, n_mels, T]`` or ``[N, 1, n_mels, T]``; each of the ``N * T``
            frames is one sample.

    Raises:
        ValueError: fewer than two frames in all.
    """
    if mels.dim() == 4:
        mels = mels.squeeze(1)
    if mels.dim() != 3:
        raise ValueError(f"expected mels [N, n_mels, T], got shape {tuple(mels.shape)}")
    frames = mels.double().permute(0, 2, 1).reshape(-1, mels.shape[1])
    if frames.shape[0] < 2:
        raise ValueError("need at least two mel frames to estimate a covariance")
    mu = frames.mean(dim=0)
    cov = torch.cov(frames.T, correction=1)
    return mu, cov
