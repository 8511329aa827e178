"""Reconstruction metrics on known inputs."""

from __future__ import annotations

import math

import pytest
import torch

from smalltrain.tasks.audio.quality.metrics import (
    aggregate_by_file,
    mel_l1_db,
    spectral_convergence_mel,
)


def _mels(batch: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(batch, 16, 10, generator=g) * -60.0  # dB in [-60, 0]


def test_identical_mels_give_zero() -> None:
    mel = _mels()
    assert torch.allclose(spectral_convergence_mel(mel, mel), torch.zeros(3))
    assert torch.allclose(mel_l1_db(mel, mel), torch.zeros(3))


@pytest.mark.parametrize("c", [6.0, -6.0, 20.0, -3.0])
def test_constant_db_offset_matches_hand_value(c: float) -> None:
    # +c dB multiplies every magnitude by 10**(c/20): ||(g-1) S|| / ||S|| = |g - 1|
    mel = _mels()
    expected = abs(10 ** (c / 20) - 1)
    sc = spectral_convergence_mel(mel + c, mel)
    assert torch.allclose(sc, torch.full((3,), expected), rtol=1e-5)
    assert torch.allclose(mel_l1_db(mel + c, mel), torch.full((3,), abs(c)), rtol=1e-5)


def test_four_dim_input_and_silence_prediction() -> None:
    mel = _mels().unsqueeze(1)
    silence = torch.full_like(mel, -200.0)  # magnitude ~1e-10: SC ~ 1
    assert torch.allclose(spectral_convergence_mel(silence, mel), torch.ones(3), atol=1e-6)


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="differs"):
        spectral_convergence_mel(torch.zeros(2, 4, 5), torch.zeros(2, 4, 6))


def test_aggregate_by_file_means() -> None:
    scores = aggregate_by_file([0.1, 0.3, 0.5], [1.0, 3.0, 8.0], ["a.wav", "a.wav", "b.wav"])
    assert scores.chunks == 3
    assert math.isclose(scores.sc, 0.3)
    assert math.isclose(scores.mel_l1_db, 4.0)
    by_path = {f.path: f for f in scores.per_file}
    assert math.isclose(by_path["a.wav"].sc, 0.2)
    assert by_path["a.wav"].chunks == 2
    assert math.isclose(by_path["b.wav"].mel_l1_db, 8.0)
    assert scores.to_dict()["files"][1]["path"] == "b.wav"


def test_aggregate_rejects_bad_lengths() -> None:
    with pytest.raises(ValueError, match="no chunks"):
        aggregate_by_file([], [])
    with pytest.raises(ValueError, match="lengths differ"):
        aggregate_by_file([0.1], [1.0, 2.0])
