"""Fréchet distance against closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from smalltrain.tasks.audio.quality.frechet import frechet_distance, mel_statistics


def _random_cov(d: int, seed: int) -> torch.Tensor:
    a = torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a @ a.T + 0.1 * torch.eye(d, dtype=torch.float64)


def test_identical_statistics_give_zero() -> None:
    cov = _random_cov(16, 0)
    mu = torch.randn(16, dtype=torch.float64)
    assert frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-8)


def test_diagonal_gaussians_closed_form() -> None:
    # diagonal: sum (m1-m2)^2 + sum (s1 - s2)^2 with s the standard deviations
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    var1, var2 = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 4.0, 1.0])
    expected = float((mu1 - mu2).square().sum() + (var1.sqrt() - var2.sqrt()).square().sum())
    got = frechet_distance(mu1, torch.diag(var1), mu2, torch.diag(var2))
    assert got == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(5.0 + 1.0 + 4.0)


def test_commuting_full_covariances_closed_form() -> None:
    # C2 = a^2 C1 commutes with C1: tr sqrt(C1 C2) = a tr C1, so FD = |dmu|^2 + (1 - a)^2 tr C1
    cov1 = _random_cov(8, 1)
    a = 3.0
    mu1, mu2 = torch.zeros(8), torch.full((8,), 0.5)
    expected = 8 * 0.25 + (1 - a) ** 2 * float(torch.trace(cov1))
    assert frechet_distance(mu1, cov1, mu2, a * a * cov1) == pytest.approx(expected, rel=1e-8)


def test_singular_covariance_is_stable() -> None:
    v = torch.randn(10, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    cov = v @ v.T  # rank 2
    value = frechet_distance(torch.zeros(10), cov, torch.zeros(10), cov)
    assert math.isfinite(value)
    assert value == pytest.approx(0.0, abs=1e-6)


def test_mel_statistics_per_frame() -> None:
    mels = torch.zeros(2, 3, 4)
    mels[:, 0] = torch.tensor([0.0, 2.0, 0.0, 2.0])
    mu, cov = mel_statistics(mels.unsqueeze(1))
    assert torch.allclose(mu, torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))
    assert cov[0, 0].item() == pytest.approx(8 / 7)  # 8 frames, variance with n-1
    assert cov.shape == (3, 3)


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match="mismatched"):
        frechet_distance(torch.zeros(2), torch.eye(2), torch.zeros(3), torch.eye(3))
    with pytest.raises(ValueError, match="two mel frames"):
        mel_statistics(torch.zeros(1, 4, 1))
