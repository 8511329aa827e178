"""AudioTrainingDataset, split_files and ResumableSampler on real files in tmp_path.

The tests run at 16 kHz with 1 s chunks and a small real ``AudioSpectrogram`` to stay fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader

from smalltrain.tasks.audio.data.augment import AugmentationConfig, AugmentationPipeline
from smalltrain.tasks.audio.data.dataset import (
    AudioTrainingDataset,
    ResumableSampler,
    chunk_starts,
    split_files,
)
from smalltrain.tasks.audio.data.io import AudioFileInfo, scan_folder
from smalltrain.tasks.audio.data.spectrogram import AudioSpectrogram, SpectrogramConfig
from tests.tasks.audio.conftest import MakeAudio

SR = 16000
CHUNK = SR  # 1 s


class CountingSpectrogram:
    """A real AudioSpectrogram that counts how many chunks it has analysed."""

    def __init__(self) -> None:
        self.inner = AudioSpectrogram(
            SpectrogramConfig(sample_rate=SR, n_fft=512, hop_length=256, n_mels=32)
        )
        self.config = self.inner.config
        self.chunks_analysed = 0

    def log_mel(self, wave: torch.Tensor) -> torch.Tensor:
        self.chunks_analysed += wave.shape[0]
        return self.inner.log_mel(wave)

    def normalize(self, db: torch.Tensor) -> torch.Tensor:
        return self.inner.normalize(db)


def files_of(root: Path) -> list[AudioFileInfo]:
    return scan_folder(root, target_sr=SR).files


@pytest.fixture
def small_dir(tmp_path: Path, make_audio: MakeAudio) -> Path:
    """Three files: 0.1 s (one padded chunk), 2.6 s (3 chunks) and 1.2 s stereo 44.1k (1)."""
    root = tmp_path / "small"
    make_audio(root / "a_short.wav", 0.1, sr=48000, kind="tone")
    make_audio(root / "b_long.flac", 2.6, sr=SR, kind="tone")
    make_audio(root / "c_stereo.wav", 1.2, sr=44100, channels=2, kind="noise")
    return root


def make_ds(root: Path, **kwargs: Any) -> AudioTrainingDataset:
    kwargs.setdefault("spectrogram", CountingSpectrogram())
    return AudioTrainingDataset(files_of(root), chunk_samples=CHUNK, **kwargs)


def test_chunk_rule() -> None:
    assert chunk_starts(1600, CHUNK, CHUNK) == [0]  # 0.1 s: padded, never dropped
    assert chunk_starts(int(2.6 * SR), CHUNK, CHUNK) == [0, SR, 2 * SR]  # 0.6 s tail kept
    assert chunk_starts(int(2.4 * SR), CHUNK, CHUNK) == [0, SR]  # 0.4 s tail dropped
    assert chunk_starts(CHUNK, CHUNK, CHUNK) == [0]
    assert chunk_starts(int(2.0 * SR), CHUNK, CHUNK // 2) == [0, 8000, 16000]
    assert chunk_starts(0, CHUNK, CHUNK) == []


def test_chunking_pads_short_files_and_follows_rule(small_dir: Path) -> None:
    ds = make_ds(small_dir)
    assert ds.n_chunks == 1 + 3 + 1
    assert ds.chunk_index == [(0, 0), (1, 0), (1, SR), (1, 2 * SR), (2, 0)]
    assert ds.file_of_chunk(0).rel == "a_short.wav"
    short = ds.waveform_chunk(0)
    assert short.shape == (CHUNK,)
    assert float(short[: SR // 10].abs().max()) > 0.4  # the tone is there
    assert float(short[SR // 10 + 10 :].abs().max()) == 0.0  # then zero padding
    tail = ds.waveform_chunk(3)  # 2.6 s file: last 0.6 s + padding
    assert float(tail[: int(0.55 * SR)].abs().max()) > 0.4
    assert float(tail[int(0.65 * SR) :].abs().max()) == 0.0
    item = ds[1]
    frames = SR // 256 + 1
    assert item.shape == (1, 32, frames)
    assert item.dtype == torch.float32
    assert float(item.min()) >= 0.0  # normalized: the dB floor maps to 0
    assert float(item.std()) > 0.01


def test_expansion_and_index_encoding(small_dir: Path) -> None:
    aug = AugmentationPipeline(AugmentationConfig(noise_prob=1.0), sample_rate=SR)
    ds = make_ds(small_dir, augmentation=aug, expansion=3, seed=4)
    n = ds.n_chunks
    assert len(ds) == 3 * n
    assert torch.equal(ds[1], ds.mels[1].unsqueeze(0))  # copy 0 is the clean chunk
    assert not torch.allclose(ds[n + 1], ds[1])  # copy 1 is augmented
    assert torch.equal(ds[n + 1], ds[n + 1])  # and reproducible
    assert torch.equal(ds[len(ds) + 1], ds[1])  # epoch 1, clean copy: unchanged
    assert not torch.allclose(ds[len(ds) + n + 1], ds[n + 1])  # epoch 1 augments anew
    other_seed = make_ds(small_dir, augmentation=aug, expansion=3, seed=5)
    assert not torch.allclose(other_seed[n + 1], ds[n + 1])
    no_aug = make_ds(small_dir, expansion=2)
    assert torch.equal(no_aug[n + 1], no_aug[1])


def test_cache_is_reused_and_corrupt_cache_recovers(small_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first_spec = CountingSpectrogram()
    first = make_ds(small_dir, spectrogram=first_spec, cache_dir=cache)
    assert first_spec.chunks_analysed == 5
    assert first.cache_hits == 0
    cache_files = sorted(cache.glob("*.pt"))
    assert len(cache_files) == 3
    assert not list(cache.glob("*.tmp"))

    second_spec = CountingSpectrogram()
    second = make_ds(small_dir, spectrogram=second_spec, cache_dir=cache)
    assert second_spec.chunks_analysed == 0  # nothing recomputed
    assert second.cache_hits == 3
    assert torch.equal(second.mels, first.mels)

    long_file_cache = cache / f"{second.cache_key(second.files[1])}.pt"
    long_file_cache.write_bytes(b"garbage, not a torch file")
    third_spec = CountingSpectrogram()
    third = make_ds(small_dir, spectrogram=third_spec, cache_dir=cache)
    assert third_spec.chunks_analysed == 3  # only the corrupt file's chunks
    assert third.cache_hits == 2
    assert torch.allclose(third.mels, first.mels)
    assert torch.load(long_file_cache, weights_only=True)["mels"].shape[0] == 3  # rewritten


def test_cache_key_depends_on_settings(small_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    make_ds(small_dir, cache_dir=cache)
    spec = CountingSpectrogram()
    make_ds(small_dir, spectrogram=spec, cache_dir=cache, hop_samples=SR // 2)
    assert spec.chunks_analysed > 0  # a different hop is a different cache entry
    assert len(list(cache.glob("*.pt"))) == 6


def test_split_by_file_is_disjoint_and_deterministic(tmp_path: Path, make_audio: MakeAudio) -> None:
    for i in range(6):
        make_audio(tmp_path / f"f{i}.wav", 0.2, sr=SR, freq=200.0 + 50 * i)
    files = files_of(tmp_path)
    split = split_files(files, val_fraction=0.2, seed=3)
    assert split.strategy == "by_file"
    assert not split.val_is_train
    train_rels = {f.rel for f in split.train}
    val_rels = {f.rel for f in split.val}
    assert train_rels.isdisjoint(val_rels)
    assert train_rels | val_rels == {f.rel for f in files}
    assert len(val_rels) == 1  # round(6 * 0.2)
    again = split_files(files, val_fraction=0.2, seed=3)
    assert [f.rel for f in again.val] == [f.rel for f in split.val]
    two = split_files(files[:2], val_fraction=0.01)
    assert (len(two.train), len(two.val)) == (1, 1)  # at least one validation file


def test_single_file_splits_by_time(tmp_path: Path, make_audio: MakeAudio) -> None:
    make_audio(tmp_path / "only.wav", 2.6, sr=SR)
    files = files_of(tmp_path)
    split = split_files(files, val_fraction=0.2, chunk_samples=CHUNK, target_sr=SR)
    assert split.strategy == "by_time"
    assert not split.val_is_train
    assert (split.train_chunks, split.val_chunks) == ((0, 2), (2, 3))
    spec = CountingSpectrogram()
    train = AudioTrainingDataset(
        split.train, spec, chunk_samples=CHUNK, chunk_range=split.train_chunks
    )
    val = AudioTrainingDataset(split.val, spec, chunk_samples=CHUNK, chunk_range=split.val_chunks)
    assert [s for _, s in train.chunk_index] == [0, SR]
    assert [s for _, s in val.chunk_index] == [2 * SR]  # the last chunk, later in time


def test_single_one_chunk_file_reuses_training_chunk(tmp_path: Path, make_audio: MakeAudio) -> None:
    make_audio(tmp_path / "blip.wav", 0.3, sr=SR)
    split = split_files(files_of(tmp_path), chunk_samples=CHUNK, target_sr=SR)
    assert split.strategy == "reuse"
    assert split.val_is_train
    assert split.train == split.val
    assert split.train_chunks == split.val_chunks == (0, 1)


def test_split_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least one file"):
        split_files([])


def test_sampler_resume_reproduces_permutation_tail() -> None:
    sampler = ResumableSampler(10, seed=7)
    sampler.set_epoch(2)
    full = list(sampler)
    assert sorted(full) == list(range(20, 30))  # epoch * n + perm
    sampler.set_start(4)
    assert list(sampler) == full[4:]
    assert len(sampler) == 6

    restored = ResumableSampler(10, seed=0)
    restored.load_state_dict(sampler.state_dict())
    assert restored.state_dict() == sampler.state_dict()
    assert list(restored) == full[4:]

    restored.set_epoch(3)  # a new epoch starts from the beginning with a new order
    assert len(list(restored)) == 10
    assert [i - 30 for i in restored] != [i - 20 for i in full]
    restored.set_start(12)  # 3 batches of 4 consumed a 10-item epoch
    assert list(restored) == []
    with pytest.raises(ValueError, match=">= 0"):
        restored.set_start(-1)
    with pytest.raises(ValueError, match="dataset changed"):
        ResumableSampler(11).load_state_dict(sampler.state_dict())
    assert list(ResumableSampler(4, shuffle=False)) == [0, 1, 2, 3]


def test_dataloader_batches_identical_across_worker_counts(small_dir: Path) -> None:
    aug = AugmentationPipeline(AugmentationConfig(noise_prob=1.0), sample_rate=SR)
    ds = make_ds(small_dir, augmentation=aug, expansion=2, seed=1)

    def batches(workers: int) -> list[torch.Tensor]:
        sampler = ResumableSampler(len(ds), seed=9)
        sampler.set_epoch(1)
        loader = DataLoader(ds, batch_size=4, sampler=sampler, num_workers=workers)
        return list(loader)

    inline, worker = batches(0), batches(1)
    assert len(inline) == 3
    for a, b in zip(inline, worker, strict=True):
        assert torch.equal(a, b)
