"""Chunked log-mel training data: file-level split, cached spectrograms, seeded augmentation.

Chunking rule (``chunk_starts``): chunks start at ``0, hop, 2*hop, ...`` while a whole chunk
fits. A file shorter than one chunk becomes one zero-padded chunk (never dropped). For longer
files the leftover tail after the last whole chunk becomes one more zero-padded chunk when it
holds more than half a chunk of audio, else it is dropped. With 1 s chunks a 2.6 s file gives 3
chunks and a 2.4 s file gives 2.

Index encoding: a dataset of ``L = n_chunks * expansion`` items accepts any index ``>= 0`` and
reads it as ``epoch, i = divmod(index, L)``; ``copy, chunk = divmod(i, n_chunks)``. Copy 0 is
the un-augmented chunk (served from the spectrogram cache); copies ``1..expansion-1`` are
augmented with a generator seeded from ``(seed, epoch, i)``, so batches are identical whatever
the number of DataLoader workers. ``ResumableSampler`` produces such indices.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch.utils.data import Dataset, Sampler

from smalltrain.engine.fsutil import atomic_write, remove_partial_writes
from smalltrain.tasks.audio.data.augment import AugmentationDraw, AugmentationPipeline
from smalltrain.tasks.audio.data.io import TARGET_SR, AudioFileInfo, load_audio

_CACHE_VERSION = 1
_MEL_BATCH = 32


class SpectrogramLike(Protocol):
    """What the dataset needs from ``AudioSpectrogram``."""

    config: Any

    def log_mel(self, wave: torch.Tensor) -> torch.Tensor: ...

    def normalize(self, db: torch.Tensor) -> torch.Tensor: ...


def chunk_starts(n_samples: int, chunk_samples: int, hop_samples: int) -> list[int]:
    """Start offsets of the chunks of an ``n_samples`` signal, by the module's chunking rule."""
    if n_samples <= 0:
        return []
    if n_samples <= chunk_samples:
        return [0]
    starts = list(range(0, n_samples - chunk_samples + 1, hop_samples))
    tail_start = starts[-1] + hop_samples
    if n_samples - tail_start > chunk_samples / 2:
        starts.append(tail_start)
    return starts


def expected_samples(info: AudioFileInfo, target_sr: int = TARGET_SR) -> int:
    """How many samples ``load_audio`` returns for this file at ``target_sr``."""
    if info.sample_rate == target_sr:
        return info.frames
    return int(round(info.frames * target_sr / info.sample_rate))


@dataclass(frozen=True)
class Split:
    """A train/validation split.

    ``strategy`` is "by_file" (whole files on each side), "by_time" (one file: its chunks are
    split in time; ``train_chunks``/``val_chunks`` give the ``(start, stop)`` chunk ranges to
    pass as ``chunk_range``) or "reuse" (one file of one chunk: validation reuses the training
    chunk and ``val_is_train`` is True).
    """

    train: list[AudioFileInfo]
    val: list[AudioFileInfo]
    strategy: str
    val_is_train: bool = False
    train_chunks: tuple[int, int] | None = None
    val_chunks: tuple[int, int] | None = None


def split_files(
    files: Sequence[AudioFileInfo],
    val_fraction: float = 0.2,
    seed: int = 0,
    *,
    chunk_samples: int = 48000,
    hop_samples: int | None = None,
    target_sr: int = TARGET_SR,
) -> Split:
    """Split files into train and validation by file, deterministically for a seed.

    With 2 or more files: files are shuffled with ``seed`` and ``round(n * val_fraction)``
    of them (at least 1, at most ``n - 1``) go to validation; no file is on both sides.

    Fallback with 1 file: its chunks (``chunk_starts`` with ``chunk_samples``/``hop_samples``)
    are split by time. The last ``val_fraction`` of the chunks (rounded, at least 1) form
    validation when the file has 2 or more chunks (strategy "by_time"). A single chunk is used
    for both, with ``val_is_train=True`` (strategy "reuse").

    Raises:
        ValueError: no files, or ``val_fraction`` outside (0, 1).
    """
    if not files:
        raise ValueError("split_files needs at least one file")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction={val_fraction!r}: must be in (0, 1)")
    if len(files) >= 2:
        order = torch.randperm(len(files), generator=torch.Generator().manual_seed(seed)).tolist()
        n_val = min(len(files) - 1, max(1, round(len(files) * val_fraction)))
        val_idx = set(order[:n_val])
        train = [f for i, f in enumerate(files) if i not in val_idx]
        val = [f for i, f in enumerate(files) if i in val_idx]
        return Split(train, val, "by_file")
    only = files[0]
    hop = hop_samples or chunk_samples
    n_chunks = len(chunk_starts(expected_samples(only, target_sr), chunk_samples, hop))
    if n_chunks < 2:
        return Split([only], [only], "reuse", True, (0, 1), (0, 1))
    n_val = min(n_chunks - 1, max(1, round(n_chunks * val_fraction)))
    cut = n_chunks - n_val
    return Split([only], [only], "by_time", False, (0, cut), (cut, n_chunks))


def _item_seed(seed: int, epoch: int, i: int) -> int:
    """A process-independent 63-bit seed for one augmented item."""
    digest = hashlib.sha256(f"{seed}:{epoch}:{i}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


#: A cache temporary file untouched this long was left by a killed process (one write of a
#: file's mels takes well under a second).
_STALE_TMP_S = 3600.0


def _atomic_torch_save(obj: Any, path: Path) -> None:
    atomic_write(path, lambda fh: torch.save(obj, fh), what="spectrogram cache")


class AudioTrainingDataset(Dataset[torch.Tensor]):
    """Fixed-length chunks of a set of audio files, served as normalized log-mels.

    Audio is loaded once (float32 mono at the spectrogram's rate) and kept in memory. The
    normalized log-mels of the un-augmented chunks are computed in batches at construction
    and, with ``cache_dir``, cached per file in ``cache_dir/<key>.pt`` (key: file fingerprint,
    chunk settings and spectrogram config). A corrupt cache file is recomputed.

    Args:
        files: the files to use (from ``scan_folder``).
        spectrogram: an ``AudioSpectrogram`` (anything with ``log_mel``, ``normalize`` and
            ``config.to_dict()``); keep it on the CPU when using DataLoader workers.
        chunk_samples: chunk length in samples.
        hop_samples: distance between chunk starts; None means ``chunk_samples`` (no overlap).
        augmentation: applied to copies ``1..expansion-1``; None leaves every copy clean.
        expansion: copies per chunk (copy 0 is always the clean original).
        cache_dir: where to cache spectrograms; None disables caching.
        seed: base seed of the per-item augmentation generators.
        chunk_range: ``(start, stop)`` keeps only chunks ``start..stop-1`` of the whole chunk
            list (files in order); used for the single-file time split (``Split.train_chunks``).
        sample_rate: the audio rate; None means ``spectrogram.config.sample_rate`` or 48 kHz.
    """

    def __init__(
        self,
        files: Sequence[AudioFileInfo],
        spectrogram: SpectrogramLike,
        chunk_samples: int = 48000,
        hop_samples: int | None = None,
        augmentation: AugmentationPipeline | None = None,
        expansion: int = 1,
        cache_dir: Path | None = None,
        seed: int = 0,
        chunk_range: tuple[int, int] | None = None,
        sample_rate: int | None = None,
    ) -> None:
        if not files:
            raise ValueError("AudioTrainingDataset needs at least one file")
        if chunk_samples <= 0 or (hop_samples is not None and hop_samples <= 0):
            raise ValueError("chunk_samples and hop_samples must be positive")
        if expansion < 1:
            raise ValueError(f"expansion={expansion!r}: must be >= 1")
        self.files = list(files)
        self.spectrogram = spectrogram
        self.chunk_samples = chunk_samples
        self.hop_samples = hop_samples or chunk_samples
        self.augmentation = augmentation
        self.expansion = expansion
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        if self.cache_dir is not None:  # a writer killed mid-file; other jobs may write now
            remove_partial_writes(self.cache_dir, older_than_s=_STALE_TMP_S)
        self.seed = seed
        self.sample_rate = sample_rate or int(getattr(spectrogram.config, "sample_rate", TARGET_SR))
        self.cache_hits = 0  # files whose spectrograms came from the cache
        self.waves = [torch.from_numpy(load_audio(f.path, self.sample_rate)) for f in self.files]
        index = [
            (fi, s)
            for fi, w in enumerate(self.waves)
            for s in chunk_starts(w.shape[0], chunk_samples, self.hop_samples)
        ]
        per_file = [self._file_mels(fi) for fi in range(len(self.files))]
        mels = torch.cat(per_file)
        if chunk_range is not None:
            start, stop = chunk_range
            index, mels = index[start:stop], mels[start:stop]
            if not index:
                raise ValueError(f"chunk_range={chunk_range!r} selects no chunks")
        self.chunk_range = chunk_range
        self.chunk_index: list[tuple[int, int]] = index
        self.mels = mels.contiguous()

    @property
    def n_chunks(self) -> int:
        return len(self.chunk_index)

    def __len__(self) -> int:
        return self.n_chunks * self.expansion

    def file_of_chunk(self, i: int) -> AudioFileInfo:
        """The file that chunk ``i`` comes from."""
        return self.files[self.chunk_index[i][0]]

    def waveform_chunk(self, i: int) -> torch.Tensor:
        """The clean waveform ``[chunk_samples]`` of chunk ``i`` (zero-padded at the end)."""
        fi, start = self.chunk_index[i]
        return self._slice(self.waves[fi], start)

    def __getitem__(self, index: int) -> torch.Tensor:
        """Normalized log-mel ``[1, n_mels, frames]`` of item ``index`` (see module docstring)."""
        return self.item_with_draw(index)[0]

    def item_with_draw(self, index: int) -> tuple[torch.Tensor, AugmentationDraw | None]:
        """Item ``index`` exactly as ``__getitem__`` serves it, with the augmentation settings
        drawn for it (None for a clean copy)."""
        if index < 0:
            raise IndexError(f"index {index} is negative")
        epoch, i = divmod(int(index), len(self))
        copy, chunk = divmod(i, self.n_chunks)
        if copy == 0 or self.augmentation is None:
            return self.mels[chunk].unsqueeze(0).clone(), None
        gen = torch.Generator().manual_seed(_item_seed(self.seed, epoch, i))
        draw = self.augmentation.draw(gen)
        wave = self.augmentation.apply(self.waveform_chunk(chunk), draw, gen)
        return self._mel(wave.unsqueeze(0))[0].unsqueeze(0), draw

    # --- helpers --------------------------------------------------------------------------------

    def _slice(self, wave: torch.Tensor, start: int) -> torch.Tensor:
        piece = wave[start : start + self.chunk_samples]
        if piece.shape[0] < self.chunk_samples:
            piece = torch.nn.functional.pad(piece, (0, self.chunk_samples - piece.shape[0]))
        return piece

    def _mel(self, waves: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            out = self.spectrogram.normalize(self.spectrogram.log_mel(waves))
        return out.detach().to("cpu", torch.float32)

    def cache_key(self, info: AudioFileInfo) -> str:
        """The cache file stem for one file under the current settings."""
        spec_config = self.spectrogram.config.to_dict()
        payload = json.dumps(
            {
                "v": _CACHE_VERSION,
                "fingerprint": info.fingerprint,
                "chunk": self.chunk_samples,
                "hop": self.hop_samples,
                "sr": self.sample_rate,
                "spec": spec_config,
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:32]

    def _file_mels(self, fi: int) -> torch.Tensor:
        """All chunk log-mels of file ``fi``, from the cache when it holds a valid entry."""
        wave = self.waves[fi]
        starts = chunk_starts(wave.shape[0], self.chunk_samples, self.hop_samples)
        path = None
        if self.cache_dir is not None:
            path = self.cache_dir / f"{self.cache_key(self.files[fi])}.pt"
            cached = self._load_cache(path, len(starts))
            if cached is not None:
                self.cache_hits += 1
                return cached
        chunks = torch.stack([self._slice(wave, s) for s in starts])
        mels = torch.cat([self._mel(b) for b in chunks.split(_MEL_BATCH)])
        if path is not None:
            _atomic_torch_save({"version": _CACHE_VERSION, "mels": mels}, path)
        return mels

    @staticmethod
    def _load_cache(path: Path, n_chunks: int) -> torch.Tensor | None:
        """The cached mels, or None when missing, unreadable or the wrong shape."""
        if not path.is_file():
            return None
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # any unreadable cache is simply recomputed
            return None
        mels = data.get("mels") if isinstance(data, dict) else None
        if not isinstance(mels, torch.Tensor) or mels.dim() != 3 or mels.shape[0] != n_chunks:
            return None
        return mels.float()


class ResumableSampler(Sampler[int]):
    """Shuffled indices ``epoch * n + perm[i]`` that can restart mid-epoch.

    The permutation of epoch ``e`` comes from ``torch.Generator().manual_seed(seed + e)``.
    Call ``set_epoch(e)`` before each epoch (it resets the start to 0); to resume mid-epoch,
    call ``set_epoch(e)`` then ``set_start(k)`` to skip the first ``k`` items. The trainer
    computes ``k`` from the batches it consumed (``batches * batch_size``), since DataLoader
    workers prefetch ahead of what was consumed.
    """

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True) -> None:
        if n <= 0:
            raise ValueError(f"n={n!r}: must be >= 1")
        self.n = n
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.start_index = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (its permutation) and start it from the beginning."""
        self.epoch = epoch
        self.start_index = 0

    def set_start(self, index: int) -> None:
        """Skip the first ``index`` items of the current epoch.

        An index past the end (``batches * batch_size`` after a partial last batch) is
        clamped to ``n``: the epoch then yields nothing.

        Raises:
            ValueError: a negative index.
        """
        if index < 0:
            raise ValueError(f"start index {index} must be >= 0")
        self.start_index = min(int(index), self.n)

    def permutation(self) -> list[int]:
        """The order of this epoch's items (before the ``epoch * n`` offset)."""
        if not self.shuffle:
            return list(range(self.n))
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        return torch.randperm(self.n, generator=gen).tolist()

    def __iter__(self) -> Iterator[int]:
        base = self.epoch * self.n
        return iter([base + j for j in self.permutation()[self.start_index :]])

    def __len__(self) -> int:
        return self.n - self.start_index

    def state_dict(self) -> dict[str, int | bool]:
        return {
            "n": self.n,
            "seed": self.seed,
            "shuffle": self.shuffle,
            "epoch": self.epoch,
            "start_index": self.start_index,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict`` output.

        Raises:
            ValueError: the state was saved for a different dataset size.
        """
        if int(state["n"]) != self.n:
            raise ValueError(
                f"sampler state is for {state['n']} items but the dataset has {self.n}; "
                "the dataset changed since the checkpoint, so resume cannot be exact"
            )
        self.seed = int(state["seed"])
        self.shuffle = bool(state["shuffle"])
        self.epoch = int(state["epoch"])
        self.start_index = int(state["start_index"])
