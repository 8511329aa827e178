"""Sounds longer than a chunk: the sequence prior, the overlap-add and `sample_long`."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from smalltrain.tasks.audio.data.spectrogram import AudioSpectrogram, SpectrogramConfig
from smalltrain.tasks.audio.model.model import ConvVAE
from smalltrain.tasks.audio.model.prior import LatentPrior
from smalltrain.tasks.audio.model.sequence import (
    MAX_RADIUS,
    SequencePrior,
    _shrunk_conditional,
    chunks_for,
    fit_sequence_prior,
    overlap_add_power,
    sequence_chunks,
)


def test_sequence_chunks_cover_the_file_then_one_of_silence() -> None:
    wave = torch.ones(250)
    chunks = sequence_chunks(wave, chunk_samples=100, hop_samples=50)
    assert chunks.shape == (6, 100)  # starts 0, 50, ..., 200, then 250 (after the end)
    assert chunks[-1].abs().sum() == 0
    assert chunks[-2, :50].sum() == 50  # 200..249 is sound, the rest padding
    assert chunks[-2, 50:].sum() == 0


def test_transition_is_recovered_and_kept_stable() -> None:
    g = torch.Generator().manual_seed(0)
    a_true = torch.diag(torch.tensor([0.5, -0.3, 0.8]))
    z = [torch.randn(3, generator=g)]
    for _ in range(4000):
        z.append(z[-1] @ a_true.T + 0.3 * torch.randn(3, generator=g))
    seq = torch.stack(z)
    a, b, root = _shrunk_conditional(seq[:-1], seq[1:])
    torch.testing.assert_close(a.float(), a_true, atol=0.05, rtol=0)
    assert b.abs().max() < 0.05
    torch.testing.assert_close((root @ root.T).float(), 0.09 * torch.eye(3), atol=0.02, rtol=0)
    # an explosive process is scaled back to a stable one
    grow = torch.cumprod(torch.full((50, 2), 1.1), dim=0)
    a, _, _ = _shrunk_conditional(grow[:-1], grow[1:])
    assert float(torch.linalg.eigvals(a).abs().max()) <= MAX_RADIUS + 1e-6


def test_overlap_add_joins_chunks_without_a_seam() -> None:
    level = torch.full((1, 3, 4, 10), -20.0)
    joined = overlap_add_power(level, hop_frames=5, n_frames=20)
    assert joined.shape == (1, 4, 20)
    torch.testing.assert_close(joined, torch.full((1, 4, 20), -20.0), atol=1e-4, rtol=0)
    steps = torch.stack([torch.full((4, 10), v) for v in (-10.0, -20.0, -30.0)])[None]
    joined = overlap_add_power(steps, hop_frames=5, n_frames=20)[0, 0]
    assert (joined[1:] <= joined[:-1] + 1e-4).all()  # falls monotonically across the overlaps
    assert chunks_for(samples=48000, n_frames=94, hop_frames=47, hop_length=512) == 1
    assert chunks_for(samples=3 * 48000, n_frames=94, hop_frames=47, hop_length=512) == 5


def test_sequence_prior_starts_from_first_chunks_of_one_shots() -> None:
    torch.manual_seed(0)
    spec = AudioSpectrogram(SpectrogramConfig(sample_rate=16000, n_fft=512, hop_length=256,
                                              n_mels=32))  # fmt: skip
    model = ConvVAE(n_mels=32, n_frames=32, latent_dim=8, latent_frames=4, width=8).eval()
    rng = np.random.default_rng(0)
    waves = [
        torch.from_numpy((rng.normal(size=n) * np.exp(-np.arange(n) / 2000)).astype(np.float32))
        for n in rng.integers(3000, 20000, size=10)
    ]  # 10 decaying noise hits, 0.2-1.25 s
    chunk = 31 * 256
    onsets = fit_sequence_prior(model, spec, waves, chunk, from_onsets=True)
    assert onsets.start_from == "the files' first chunks"
    assert onsets.start.n_codes == 10
    assert onsets.hop_frames == 16
    hop = 16 * 256
    assert onsets.n_pairs == sum(len(range(0, w.shape[0], hop)) for w in waves)
    anywhere = fit_sequence_prior(model, spec, waves[:5], chunk, from_onsets=True)
    assert anywhere.start_from == "all chunks"  # too few files to fit a start on their own
    z = onsets.sample(3, 4, torch.Generator().manual_seed(1))
    assert z.shape == (3, 4, 8)
    again = SequencePrior.from_state_dict(onsets.state_dict())
    torch.testing.assert_close(again.sample(3, 4, torch.Generator().manual_seed(1)), z)
    independent = SequencePrior.independent(LatentPrior.standard(8), 16)
    assert independent.sample(2, 3).shape == (2, 3, 8)


def test_sample_long_writes_sounds_of_the_asked_length(tmp_path: Path) -> None:
    from smalltrain.tasks.audio.config import TrainingConfig
    from smalltrain.tasks.audio.data.synth import make_drum_kit
    from smalltrain.tasks.audio.training.train import train
    from smalltrain.tasks.audio.use.generate import load_model, sample_long

    make_drum_kit(tmp_path / "kit", 10, seed=0)
    cfg = TrainingConfig(
        epochs=1, batch_size=4, latent_dim=8, model_width=8, augmentation=False, n_mels=32,
        preview_every=0, device="cpu", material="onset", latent_global=3, chunk_gain=True,
        latent_frames=4,
    )  # fmt: skip
    result = train(cfg, tmp_path / "kit", tmp_path / "run")
    assert result.best_checkpoint is not None
    loaded = load_model(result.best_checkpoint)
    assert "sequence_prior" in loaded.checkpoint  # fitted once, when training ended
    assert loaded.sequence_prior.start_from == "the files' first chunks"
    paths = sample_long(loaded, 2, 2.5, tmp_path / "long", seed=3)
    assert [p.name for p in paths] == ["sample_000.wav", "sample_001.wav"]
    audio, sr = sf.read(paths[0])
    assert sr == 48000
    assert audio.shape == (120000,)
    assert np.isfinite(audio).all()
    assert abs(audio[-1]) < 1e-3  # faded out: no click at the end
    again, _ = sf.read(sample_long(loaded, 2, 2.5, tmp_path / "again", seed=3)[0])
    np.testing.assert_array_equal(audio, again)
    with pytest.raises(ValueError, match="duration"):
        sample_long(loaded, 1, 0.0, tmp_path / "none")
    assert math.isfinite(float(np.abs(audio).max()))
