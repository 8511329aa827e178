"""LatentPrior: the Gaussian new sounds are drawn from, fitted to training codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch

from smalltrain.tasks.audio.data.spectrogram import AudioSpectrogram, SpectrogramConfig
from smalltrain.tasks.audio.model.model import ConvVAE
from smalltrain.tasks.audio.model.prior import LatentPrior, fit_latent_prior
from smalltrain.tasks.audio.use.preview import PreviewRenderer


def test_fit_recovers_mean_and_covariance() -> None:
    g = torch.Generator().manual_seed(0)
    mixing = torch.tensor([[1.0, 0.0, 0.0], [0.8, 0.5, 0.0], [0.0, -0.3, 0.2]])
    codes = torch.randn(20000, 3, generator=g) @ mixing.T + torch.tensor([2.0, -1.0, 0.5])
    prior = LatentPrior.fit(codes)
    assert prior.fitted
    assert prior.n_codes == 20000
    torch.testing.assert_close(prior.mean, codes.mean(0), rtol=0, atol=1e-5)
    torch.testing.assert_close(prior.root @ prior.root.T, torch.cov(codes.T), rtol=0, atol=1e-4)
    drawn = prior.sample(20000, torch.Generator().manual_seed(1))
    torch.testing.assert_close(drawn.mean(0), codes.mean(0), rtol=0, atol=0.03)
    torch.testing.assert_close(torch.cov(drawn.T), mixing @ mixing.T, rtol=0, atol=0.05)


def test_fewer_codes_than_dimensions_still_sample() -> None:
    codes = torch.randn(3, 10, generator=torch.Generator().manual_seed(0))
    drawn = LatentPrior.fit(codes).sample(5, torch.Generator().manual_seed(0))
    assert drawn.shape == (5, 10)
    assert torch.isfinite(drawn).all()
    # every draw lies in the plane of the 3 codes: mean + span of the 2 centred directions
    centred = drawn - codes.mean(0)
    basis = torch.linalg.svd(codes - codes.mean(0), full_matrices=False)[2][:2]
    torch.testing.assert_close(centred @ basis.T @ basis, centred, rtol=0, atol=1e-4)


def test_temperature_scales_the_spread_around_the_mean() -> None:
    prior = LatentPrior(torch.tensor([1.0, -1.0]), torch.eye(2) * 2)
    cold = prior.sample(4, torch.Generator().manual_seed(0), temperature=0.0)
    assert torch.equal(cold, torch.tensor([[1.0, -1.0]]).expand(4, 2))
    one = prior.sample(4, torch.Generator().manual_seed(0), temperature=1.0)
    hot = prior.sample(4, torch.Generator().manual_seed(0), temperature=2.5)
    torch.testing.assert_close(hot - prior.mean, 2.5 * (one - prior.mean))


def test_checkpoint_without_a_prior_falls_back_to_the_standard_normal() -> None:
    stored = LatentPrior.fit(torch.randn(10, 4)).state_dict()
    assert LatentPrior.of_checkpoint({"latent_prior": stored}, 4).fitted
    assert not LatentPrior.of_checkpoint({}, 4).fitted
    assert not LatentPrior.of_checkpoint({"latent_prior": stored}, 8).fitted  # another model
    standard = LatentPrior.standard(3)
    assert torch.equal(standard.root, torch.eye(3))
    assert torch.equal(standard.mean, torch.zeros(3))


def test_invalid_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="N >= 2"):
        LatentPrior.fit(torch.randn(1, 4))
    with pytest.raises(ValueError, match="mean"):
        LatentPrior(torch.zeros(3), torch.eye(2))


def test_fit_latent_prior_uses_posterior_means_and_keeps_the_mode() -> None:
    torch.manual_seed(0)
    model = ConvVAE(n_mels=16, n_frames=8, latent_dim=8, latent_frames=2, width=8).train()
    mels = torch.rand(6, 16, 8)
    prior = fit_latent_prior(model, mels)
    assert model.training
    model.eval()
    with torch.no_grad():
        codes = model.encode(mels.unsqueeze(1))[0]
    torch.testing.assert_close(prior.mean, codes.mean(0), rtol=0, atol=1e-5)
    assert prior.n_codes == 6
    assert not fit_latent_prior(model, mels[:1]).fitted  # one chunk: nothing to fit


def test_previews_decode_the_fixed_noise_through_the_prior(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = SpectrogramConfig(sample_rate=16000, n_fft=256, hop_length=128, n_mels=16)
    model = ConvVAE(n_mels=16, n_frames=8, latent_dim=8, latent_frames=2, width=8)
    renderer = PreviewRenderer(AudioSpectrogram(config), [], tmp_path, count=3, seed=0)
    noise = renderer.latents(8)
    assert not torch.equal(noise[0], noise[1])
    # a prior with no spread: every sample is its mean
    point = LatentPrior(torch.full((8,), 0.5), torch.zeros(8, 8), n_codes=4)
    assert torch.equal(renderer.latents(8, point), torch.full((3, 8), 0.5))
    shifted = LatentPrior(torch.full((8,), 2.0), 3 * torch.eye(8), n_codes=4)
    torch.testing.assert_close(renderer.latents(8, shifted), 2.0 + 3 * noise)
    assert torch.equal(renderer.latents(8), noise)  # the same noise every epoch
    events: list[Any] = []
    paths = renderer.render(model, 0, events.append, point)
    assert [p.name for p in paths] == [f"epoch_0001_sample_{i}.wav" for i in range(3)]
    assert all(np.isfinite(sf.read(p)[0]).all() for p in paths)
    assert len(events) == 1
