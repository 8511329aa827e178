"""Scoring what a listener gets: whole files rendered to audio and compared with the originals.

For each file, three renderings are compared with the original waveform by the
multi-resolution STFT distance of ``waveform.py``:

- ``model``: what ``smalltrain reconstruct`` writes: the file cut into chunks from its start,
  each chunk encoded, decoded from its mean code and rendered (``render_mels``), the chunks
  joined and cut to the file's length;
- ``pca``: the same with PCA of the model's size in place of the model;
- ``inversion``: the file's own log-mel rendered back, the *ceiling*: no model can score
  better than the mel-to-audio step allows, so ``model - inversion`` is what the model loses.

Scores are per file, then averaged over files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from smalltrain.tasks.audio.data.spectrogram import AudioSpectrogram
from smalltrain.tasks.audio.quality.waveform import RESOLUTIONS, WaveformScores, mrstft_distance

__all__ = ["FileWaveScores", "WaveformReport", "chunk_waves", "render_chunks", "score_waveforms"]

_RENDER_BATCH = 32  # chunks rendered at once (Griffin-Lim is batched)
Transform = Callable[[Tensor], Tensor]  # normalized mels [C, n_mels, T] -> the same


def chunk_waves(wave: Tensor, chunk_samples: int) -> Tensor:
    """``[C, chunk_samples]``: the file cut from its start, the last chunk zero-padded."""
    starts = range(0, max(int(wave.shape[0]), 1), chunk_samples)
    pieces = [wave[s : s + chunk_samples] for s in starts]
    return torch.stack(
        [torch.nn.functional.pad(p, (0, chunk_samples - p.shape[0])) for p in pieces]
    )


def render_chunks(mels: Tensor, spectrogram: AudioSpectrogram, chunk_samples: int) -> Tensor:
    """Normalized mels ``[C, n_mels, T]`` of consecutive chunks -> one waveform ``[C * size]``.

    Values below 0 (the floor) render as the floor.
    """
    db = spectrogram.denormalize(mels.detach().float().cpu().clamp_min(0.0))
    cpu = spectrogram.to(torch.device("cpu"))
    parts = [cpu.to_audio(b, length=chunk_samples) for b in db.split(_RENDER_BATCH)]
    return torch.cat(parts).reshape(-1)


@dataclass(frozen=True)
class FileWaveScores:
    """One file's scores: model, PCA and inversion alone."""

    path: str
    model: WaveformScores
    pca: WaveformScores
    inversion: WaveformScores


@dataclass(frozen=True)
class WaveformReport:
    """Per-file scores and their means over files."""

    files: list[FileWaveScores]

    def mean(self, side: str) -> WaveformScores:
        """The mean over files of ``side``: "model", "pca" or "inversion"."""
        scores = [getattr(f, side) for f in self.files]
        n = max(len(scores), 1)
        return WaveformScores(sum(s.sc for s in scores) / n, sum(s.log_mag_db for s in scores) / n)

    def to_dict(self) -> dict[str, Any]:
        return {
            "resolutions": [list(r) for r in RESOLUTIONS],
            "files": len(self.files),
            "model": self.mean("model").to_dict(),
            "baseline_pca": self.mean("pca").to_dict(),
            "inversion": self.mean("inversion").to_dict(),
        }


def score_waveforms(
    names: Sequence[str],
    waves: Sequence[Tensor],
    spectrogram: AudioSpectrogram,
    chunk_samples: int,
    transforms: dict[str, Transform],
) -> WaveformReport:
    """Render every file through each of ``transforms`` ("model", "pca"; "inversion" is the
    identity) and score it against the original.

    Args:
        names: a name per file (for the per-file rows).
        waves: the files' mono waveforms at the spectrogram's rate.
        spectrogram: the model's ``AudioSpectrogram``.
        chunk_samples: the model's chunk length.
        transforms: ``{"model": ..., "pca": ...}``, each mapping normalized mels to their
            reconstruction.
    """
    sides = {**transforms, "inversion": lambda m: m}
    files: list[FileWaveScores] = []
    group: list[int] = []
    for i in range(len(waves)):  # files in groups of about _RENDER_BATCH chunks: memory stays flat
        group.append(i)
        size = sum(-(-max(int(waves[j].shape[0]), 1) // chunk_samples) for j in group)
        if size >= _RENDER_BATCH or i == len(waves) - 1:
            files += _score_group([names[j] for j in group], [waves[j] for j in group],
                                  spectrogram, chunk_samples, sides)  # fmt: skip
            group = []
    return WaveformReport(files)


def _score_group(
    names: list[str],
    waves: list[Tensor],
    spectrogram: AudioSpectrogram,
    chunk_samples: int,
    sides: dict[str, Transform],
) -> list[FileWaveScores]:
    chunks = [chunk_waves(w.float().cpu(), chunk_samples) for w in waves]
    sizes = [c.shape[0] * chunk_samples for c in chunks]
    mels = spectrogram.normalize(spectrogram.log_mel(torch.cat(chunks))).cpu()
    rendered = {
        side: render_chunks(fn(mels), spectrogram, chunk_samples).split(sizes)
        for side, fn in sides.items()
    }
    out = []
    for i, (name, wave) in enumerate(zip(names, waves, strict=True)):
        n = max(int(wave.shape[0]), 1)
        scores = {side: mrstft_distance(r[i][:n], wave.float()) for side, r in rendered.items()}
        out.append(FileWaveScores(name, scores["model"], scores["pca"], scores["inversion"]))
    return out
