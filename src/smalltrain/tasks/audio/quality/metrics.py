"""Reconstruction quality on log-mel spectrograms: spectral convergence and mel L1 in dB.

Both metrics work on the model's mel, before any inversion, so Griffin-Lim error never counts.
Inputs are log-mels in dB (``AudioSpectrogram.log_mel`` or ``denormalize`` of a model output),
shaped ``[B, n_mels, T]`` or ``[B, 1, n_mels, T]``; each returns one value per item ``[B]``.

- Spectral convergence (SC) on *linear mel magnitude* ``S = 10 ** (dB / 20)``:
  ``||S - S_hat||_F / ||S||_F``. 0 is perfect; a prediction that is uniformly ``c`` dB too loud
  scores ``|10 ** (c / 20) - 1|``; predicting silence scores about 1.
- Mel L1: mean absolute difference of the dB values.

Aggregation (``aggregate_by_file``): the overall score is the mean over *chunks* (every chunk
weighs the same, so long files count more); a file's score is the mean over that file's chunks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "FileScore",
    "ReconstructionScores",
    "aggregate_by_file",
    "mel_l1_db",
    "spectral_convergence_mel",
]

_EPS = 1e-12  # keeps SC finite for an all-floor target; negligible next to any real sound


def _flat(db: Tensor) -> Tensor:
    """Return ``[B, features]`` float32 from ``[B, n_mels, T]`` or ``[B, 1, n_mels, T]``."""
    if db.dim() < 2:
        raise ValueError(f"expected a batch of mels [B, n_mels, T], got shape {tuple(db.shape)}")
    return db.reshape(db.shape[0], -1).float()


def _check_pair(pred_db: Tensor, target_db: Tensor) -> tuple[Tensor, Tensor]:
    if pred_db.shape != target_db.shape:
        raise ValueError(
            f"prediction shape {tuple(pred_db.shape)} differs from target {tuple(target_db.shape)}"
        )
    return _flat(pred_db), _flat(target_db)


def spectral_convergence_mel(pred_db: Tensor, target_db: Tensor) -> Tensor:
    """Spectral convergence per item on linear mel magnitude.

    Args:
        pred_db: predicted log-mel in dB, ``[B, n_mels, T]`` or ``[B, 1, n_mels, T]``.
        target_db: reference log-mel in dB, same shape.

    Returns:
        ``[B]``: ``||S - S_hat||_F / ||S||_F`` with ``S = 10 ** (target_db / 20)``.

    Raises:
        ValueError: the shapes differ.
    """
    pred, target = _check_pair(pred_db, target_db)
    s_hat = torch.pow(10.0, pred / 20.0)
    s = torch.pow(10.0, target / 20.0)
    err = torch.linalg.vector_norm(s - s_hat, dim=1)
    return err / torch.linalg.vector_norm(s, dim=1).clamp_min(_EPS)


def mel_l1_db(pred_db: Tensor, target_db: Tensor) -> Tensor:
    """Mean absolute log-mel error in dB per item, ``[B]``.

    Raises:
        ValueError: the shapes differ.
    """
    pred, target = _check_pair(pred_db, target_db)
    return (pred - target).abs().mean(dim=1)


@dataclass(frozen=True)
class FileScore:
    """Scores of one file: the mean over its chunks."""

    path: str
    sc: float
    mel_l1_db: float
    chunks: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sc": self.sc,
            "mel_l1_db": self.mel_l1_db,
            "chunks": self.chunks,
        }


@dataclass(frozen=True)
class ReconstructionScores:
    """Overall scores (mean over chunks) and per-file scores (mean over each file's chunks)."""

    sc: float
    mel_l1_db: float
    chunks: int
    per_file: list[FileScore] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sc": self.sc,
            "mel_l1_db": self.mel_l1_db,
            "chunks": self.chunks,
            "files": [f.to_dict() for f in self.per_file],
        }


def aggregate_by_file(
    sc: Tensor | Sequence[float],
    l1_db: Tensor | Sequence[float],
    files: Sequence[str] | None = None,
) -> ReconstructionScores:
    """Combine per-chunk scores into overall and per-file means.

    Args:
        sc: spectral convergence of each chunk, ``[N]``.
        l1_db: mel L1 (dB) of each chunk, ``[N]``.
        files: the file each chunk came from (``N`` names); None gives no per-file list.
            Files are listed in order of first appearance.

    Raises:
        ValueError: lengths differ, or there are no chunks.
    """
    sc_t = torch.as_tensor(sc, dtype=torch.float64).flatten()
    l1_t = torch.as_tensor(l1_db, dtype=torch.float64).flatten()
    n = sc_t.numel()
    if n == 0:
        raise ValueError("no chunks to score")
    if l1_t.numel() != n or (files is not None and len(files) != n):
        got = "None" if files is None else len(files)
        raise ValueError(f"per-chunk lengths differ: sc {n}, mel_l1_db {l1_t.numel()}, files {got}")
    per_file: list[FileScore] = []
    if files is not None:
        index: dict[str, list[int]] = {}
        for i, name in enumerate(files):
            index.setdefault(name, []).append(i)
        for name, rows in index.items():
            idx = torch.tensor(rows)
            per_file.append(
                FileScore(
                    path=name,
                    sc=float(sc_t[idx].mean()),
                    mel_l1_db=float(l1_t[idx].mean()),
                    chunks=len(rows),
                )
            )
    return ReconstructionScores(
        sc=float(sc_t.mean()), mel_l1_db=float(l1_t.mean()), chunks=n, per_file=per_file
    )
