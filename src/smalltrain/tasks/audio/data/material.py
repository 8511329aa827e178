"""Tell onset-aligned one-shots (drum hits) from continuous sound (speech, drones, loops).

The audio task chooses augmentation by material: random time shifts help continuous sound and
hurt onset-aligned one-shots (see the reference runs in the data README). ``inspect`` calls
``detect_material_for_report``.

Per file, on at most the first ``max_seconds`` (5 s) at its native rate, mono:

- an RMS envelope (~21 ms frames, 5 ms hop) and a spectral-flux onset curve
  (half-wave rectified increase of log-compressed magnitude);
- ``start_s``: when the envelope first comes within 30 dB of its peak;
- ``attack_s``: from ``start_s`` to the envelope peak;
- ``decay_db``: peak minus the mean level over the last fifth of the analysed sound;
- ``later_onsets``: strong flux peaks (>= 30% of the largest) more than 100 ms after the start.

A file is *onset-aligned* when it is short (<= 3 s), starts within 100 ms, peaks within 50 ms of
its start, decays by >= 12 dB (or lasts <= 0.25 s: padded into a chunk it is a one-shot anyway)
and has at most one later strong onset: a flux peak within 20 dB of the loudest frame where the
level rose by >= 6 dB (a decaying tail's flux wiggles do not count). Anything else is
*continuous* (sustained energy, or onsets spread through the file). The dataset is "onset" when
at least 2/3 of its files are onset-aligned, "continuous" when at most 1/3 are, else "mixed".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import soundfile as sf

if TYPE_CHECKING:
    import torch

__all__ = [
    "FileMaterial",
    "MaterialReport",
    "analyse_wave",
    "detect_material",
    "detect_material_for_report",
]

MaterialKind = Literal["onset", "continuous", "mixed"]

MAX_SECONDS = 5.0
ONSET_MAX_DURATION_S = 3.0
MAX_START_S = 0.10
MAX_ATTACK_S = 0.05
MIN_DECAY_DB = 12.0
MAX_LATER_ONSETS = 1
SHORT_S = 0.25  # a blip this short sits at the start of a padded chunk: onset-aligned as is
ONSET_FRACTION_HIGH = 2 / 3
ONSET_FRACTION_LOW = 1 / 3
_HOP_S = 0.005
_FRAME_S = 0.021
_EPS = 1e-10


@dataclass(frozen=True)
class FileMaterial:
    """The material of one file and the measurements behind it."""

    path: str
    kind: Literal["onset", "continuous"]
    duration_s: float
    start_s: float
    attack_s: float
    decay_db: float
    later_onsets: int

    def describe(self) -> str:
        """A short reason, e.g. ``onset: attack 6 ms, decays 35 dB, 0 later onsets, 0.4 s``."""
        return (
            f"{self.kind}: attack {self.attack_s * 1000:.0f} ms, decays {self.decay_db:.0f} dB, "
            f"{self.later_onsets} later onsets, {self.duration_s:.1f} s"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "duration_s": self.duration_s,
            "start_s": self.start_s,
            "attack_s": self.attack_s,
            "decay_db": self.decay_db,
            "later_onsets": self.later_onsets,
        }


@dataclass(frozen=True)
class MaterialReport:
    """What kind of material a dataset is, with the share of onset-aligned files and why."""

    kind: MaterialKind
    onset_fraction: float
    n_files: int
    reasons: list[str] = field(default_factory=list)
    files: list[FileMaterial] = field(default_factory=list)

    def summary(self) -> str:
        """One line for ``inspect``, e.g. ``onset (9 of 10 files onset-aligned)``."""
        n_onset = sum(f.kind == "onset" for f in self.files)
        return f"{self.kind} ({n_onset} of {self.n_files} files onset-aligned)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "onset_fraction": self.onset_fraction,
            "n_files": self.n_files,
            "reasons": list(self.reasons),
            "files": [f.to_dict() for f in self.files],
        }


def _frames(x: np.ndarray, frame: int, hop: int) -> np.ndarray:
    if x.shape[0] < frame:
        x = np.pad(x, (0, frame - x.shape[0]))
    return np.lib.stride_tricks.sliding_window_view(x, frame)[::hop]


def _strong_peaks(curve: np.ndarray, min_gap: int) -> np.ndarray:
    """Indices of local maxima >= 30% of the curve's max, at least ``min_gap`` apart."""
    top = float(curve.max()) if curve.size else 0.0
    if top <= 0:
        return np.zeros(0, dtype=int)
    left = np.concatenate([[-np.inf], curve[:-1]])
    right = np.concatenate([curve[1:], [-np.inf]])
    cand = np.flatnonzero((curve >= left) & (curve > right) & (curve >= 0.3 * top))
    kept: list[int] = []
    for i in cand[np.argsort(-curve[cand])]:
        if all(abs(int(i) - j) >= min_gap for j in kept):
            kept.append(int(i))
    return np.array(sorted(kept), dtype=int)


def _count_later_onsets(onsets: np.ndarray, env_db: np.ndarray, after: int) -> int:
    """Flux peaks after frame ``after`` that are also loud, fresh energy rises.

    A decaying hit has flux wiggles in its tail; only a peak within 20 dB of the loudest frame
    whose level rose by >= 6 dB over the preceding 50 ms counts as a new event.
    """
    back, ahead = round(0.05 / _HOP_S), round(0.02 / _HOP_S)
    top = float(env_db.max())
    count = 0
    for i in onsets[onsets > after]:
        level = float(env_db[i : i + ahead + 1].max())
        before = float(env_db[max(0, i - back) : i + 1].min())
        if level >= top - 20.0 and level - before >= 6.0:
            count += 1
    return count


def analyse_wave(
    wave: np.ndarray | torch.Tensor,
    sample_rate: int,
    path: str = "",
    duration_s: float | None = None,
) -> FileMaterial:
    """Measure one mono (or ``[channels, N]``) waveform and classify it.

    Args:
        wave: samples; only the first ``MAX_SECONDS`` are analysed.
        sample_rate: its rate in Hz.
        path: a name for the report.
        duration_s: the file's full duration (default: the wave's length).
    """
    if not isinstance(wave, np.ndarray):  # a torch tensor: torch is loaded already
        wave = wave.detach().cpu().numpy()
    x = np.asarray(wave, dtype=np.float64)
    if x.ndim > 1:
        x = x.mean(axis=0)
    full = x.shape[0] / sample_rate if duration_s is None else duration_s
    x = x[: int(MAX_SECONDS * sample_rate)]
    hop = max(1, round(_HOP_S * sample_rate))
    frame = 1 << int(np.ceil(np.log2(max(8, _FRAME_S * sample_rate))))
    frames = _frames(x, frame, hop)
    env_db = 10 * np.log10(np.mean(frames**2, axis=1) + _EPS)
    peak = int(np.argmax(env_db))
    start = int(np.argmax(env_db > env_db[peak] - 30.0))
    tail = env_db[start + int(0.8 * (len(env_db) - start)) :]
    decay = float(env_db[peak] - (tail.mean() if tail.size else env_db[-1]))
    mag = np.log1p(100.0 * np.abs(np.fft.rfft(frames * np.hanning(frame), axis=1)))
    flux = np.concatenate([[0.0], np.maximum(mag[1:] - mag[:-1], 0.0).sum(axis=1)])
    onsets = _strong_peaks(flux, min_gap=max(1, round(0.05 / _HOP_S)))
    later = _count_later_onsets(onsets, env_db, start + round(0.1 / _HOP_S))
    start_s, attack_s = start * hop / sample_rate, (peak - start) * hop / sample_rate
    is_onset = (
        full <= ONSET_MAX_DURATION_S
        and start_s <= MAX_START_S
        and attack_s <= MAX_ATTACK_S
        and (decay >= MIN_DECAY_DB or full <= SHORT_S)
        and later <= MAX_LATER_ONSETS
    )
    return FileMaterial(
        path=path,
        kind="onset" if is_onset else "continuous",
        duration_s=float(full),
        start_s=float(start_s),
        attack_s=float(attack_s),
        decay_db=decay,
        later_onsets=later,
    )


def _summarise(files: list[FileMaterial]) -> MaterialReport:
    if not files:
        return MaterialReport("mixed", 0.0, 0, ["no readable audio to judge the material"], [])
    frac = sum(f.kind == "onset" for f in files) / len(files)
    kind: MaterialKind
    if frac >= ONSET_FRACTION_HIGH:
        kind, rule = "onset", f">= {ONSET_FRACTION_HIGH:.0%} of files are onset-aligned one-shots"
    elif frac <= ONSET_FRACTION_LOW:
        kind, rule = "continuous", f"<= {ONSET_FRACTION_LOW:.0%} of files are onset-aligned"
    else:
        kind, rule = "mixed", "between a third and two thirds of files are onset-aligned"
    reasons = [f"{frac:.0%} of {len(files)} files onset-aligned: {rule}"]
    reasons += [f"{f.path}: {f.describe()}" for f in files[:5]]
    return MaterialReport(kind, frac, len(files), reasons, files)


def detect_material(
    waves: Sequence[np.ndarray | torch.Tensor],
    sample_rate: int,
    names: Sequence[str] | None = None,
) -> MaterialReport:
    """Classify a set of waveforms (all at ``sample_rate``) and the dataset as a whole."""
    labels = list(names) if names is not None else [f"#{i}" for i in range(len(waves))]
    files = [analyse_wave(w, sample_rate, labels[i]) for i, w in enumerate(waves)]
    return _summarise(files)


class _FileLike(Protocol):
    @property
    def path(self) -> Path: ...


class _ReportLike(Protocol):
    @property
    def files(self) -> Sequence[_FileLike]: ...


def _read_head(path: Path) -> tuple[np.ndarray, int, float]:
    """The first ``MAX_SECONDS`` of a file as mono at its native rate, and its full duration."""
    info = sf.info(str(path))
    data, sr = sf.read(
        str(path), frames=int(MAX_SECONDS * info.samplerate) + 1, dtype="float32", always_2d=True
    )
    return data.mean(axis=1), int(sr), info.frames / info.samplerate


def detect_material_for_report(report: _ReportLike) -> MaterialReport:
    """Classify the files of a ``DatasetReport`` (reads at most 5 s of each, no resampling).

    Files that fail to read here (they passed ``scan_folder``, so this is rare) are left out.
    """
    files: list[FileMaterial] = []
    for info in report.files:
        name = str(getattr(info, "rel", info.path))
        try:
            wave, sr, duration = _read_head(Path(info.path))
        except (sf.LibsndfileError, OSError, RuntimeError):
            continue
        files.append(analyse_wave(wave, sr, name, duration))
    return _summarise(files)
