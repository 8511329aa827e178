"""Generation scores: precision/recall on sound features, memorisation, multi-resolution STFT."""

from __future__ import annotations

import math

import torch

from smalltrain.tasks.audio.quality.genscores import (
    memorisation,
    precision_recall,
    score_sampler,
    sound_features,
)
from smalltrain.tasks.audio.quality.waveform import mrstft_distance


def _hits(n: int, seed: int, decay: float = 8.0, level: float = -10.0) -> torch.Tensor:
    """Log-mels in dB [n, 32, 40]: decaying hits of random spectral tilt, floor -80."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(40.0)
    bands = torch.arange(32.0)
    tilt = torch.rand(n, 1, 1, generator=g) * 30
    rate = decay * (0.5 + torch.rand(n, 1, 1, generator=g))
    db = level - tilt * bands[None, :, None] / 32 - rate * t[None, None, :] / 4
    db = db + 2 * torch.randn(n, 32, 40, generator=g)
    return db.clamp_min(-80.0)


def test_sound_features_see_envelope_timbre_and_level() -> None:
    a = _hits(4, 0)
    f = sound_features(a)
    assert f.shape == (4, 2 * 13 + 4 + 8)
    assert torch.isfinite(f).all()
    louder = sound_features(a + 6.0)
    assert not torch.allclose(f, louder)  # the envelope keeps the level


def test_precision_recall_tell_plausible_varied_samples_from_bad_ones() -> None:
    real = sound_features(_hits(60, 0))
    same = sound_features(_hits(60, 1))  # the same distribution, new draws
    p, r = precision_recall(real, same)
    assert p > 0.65, p  # k = 3 manifolds of 60 sounds in 38 dimensions: measured 0.78, 0.88
    assert r > 0.65, r
    # one sound repeated: plausible (precision high) but no variety (recall low)
    p, r = precision_recall(real, sound_features(_hits(1, 1).repeat(60, 1, 1)))
    assert p == 1.0
    assert r < 0.3, r
    # held tones that never decay: implausible
    p, r = precision_recall(real, sound_features(_hits(60, 2, decay=0.0)))
    assert p < 0.2, p


def test_chunks_of_one_file_do_not_shrink_the_real_manifold() -> None:
    """Six long files of six near-identical chunks each: counted as single sounds, the real
    manifold is six specks and no new sound of the same kind lands in one; by file, it does."""
    g = torch.Generator().manual_seed(0)
    files = _hits(6, 0)
    real = files.repeat_interleave(6, dim=0) + 0.3 * torch.randn(36, 32, 40, generator=g)
    groups = [f"f{i // 6}" for i in range(36)]
    fake = _hits(40, 1)
    loose, _ = precision_recall(sound_features(real), sound_features(fake))
    grouped, _ = precision_recall(sound_features(real), sound_features(fake), real_groups=groups)
    assert loose < 0.2, loose
    assert grouped > 2 * loose + 0.2, (grouped, loose)


def test_memorisation_flags_copies_of_training_chunks() -> None:
    train = _hits(40, 0)
    copies = train[:10] + 0.1 * torch.randn(10, 32, 40, generator=torch.Generator().manual_seed(3))
    ratio, near = memorisation(copies, train)
    assert ratio < 0.1, ratio
    assert near == 1.0
    ratio, near = memorisation(_hits(40, 5), train)  # new draws of the same kind of sound
    assert 0.6 < ratio < 1.6, ratio
    assert near < 0.25, near
    assert all(math.isnan(v) for v in memorisation(copies, train[:1]))


def test_score_sampler_is_json_ready() -> None:
    scores = score_sampler(_hits(8, 1), _hits(12, 0), _hits(20, 2)).to_dict()
    assert set(scores) == {"frechet", "precision", "recall", "memorisation_ratio", "near_copies"}
    assert all(isinstance(v, float) for v in scores.values())


def test_mrstft_distance_zero_for_itself_and_blind_to_phase_only() -> None:
    g = torch.Generator().manual_seed(0)
    t = torch.arange(16000) / 48000
    env = torch.exp(-5 * t) * torch.clamp(t / 0.01, max=1.0)  # a 10 ms fade-in: no click
    wave = torch.sin(2 * math.pi * 440 * t) * env + 0.01 * torch.randn(16000, generator=g)
    assert mrstft_distance(wave, wave).sc == 0.0
    assert mrstft_distance(wave, wave).log_mag_db == 0.0
    shifted = torch.sin(2 * math.pi * 440 * t + 1.0) * env
    clean = torch.sin(2 * math.pi * 440 * t) * env
    # a phase change is (nearly) inaudible: 0.07 (the abrupt end differs), 1 dB of gain is 0.11
    assert mrstft_distance(shifted, clean).sc < 0.1
    quieter = mrstft_distance(0.5 * wave, wave)
    assert abs(quieter.sc - 0.5) < 1e-3  # SC of a uniform gain error: |0.5 - 1|
    # a reconstruction that stops early is scored as silence where the original still sounds
    assert mrstft_distance(wave[:8000], wave).sc > 0.1


def test_rendered_chunks_stay_in_place() -> None:
    """Chunks are rendered to their full length and joined in place: a click 0.25 s into the
    third chunk comes back there (the old join lost 384 samples a chunk, so it came back 16 ms
    early)."""
    from smalltrain.tasks.audio.data.spectrogram import AudioSpectrogram
    from smalltrain.tasks.audio.quality.render_eval import chunk_waves, render_chunks

    spec = AudioSpectrogram()
    wave = torch.zeros(int(2.6 * 48000))
    at = 2 * 48000 + 12000
    wave[at : at + 48] = 1.0
    chunks = chunk_waves(wave, 48000)
    assert chunks.shape == (3, 48000)
    mels = spec.normalize(spec.log_mel(chunks))
    audio = render_chunks(mels, spec, 48000)
    assert audio.shape == (3 * 48000,)
    peak = int(audio[2 * 48000 :].abs().argmax()) + 2 * 48000
    assert abs(peak - at) < 0.002 * 48000, (peak - at) / 48
