"""Exploring a trained sound model: the map, the sliders, the pad, and sounds made from them.

``explore(loaded)`` encodes every training and held-out file the model recorded (the first
chunk of each, as ``interpolate`` does), measures its descriptors, places it in 2-D (PCA of the
codes), fits the sliders (``directions.py``) on the training files and measures what each does
on the held-out ones. ``make_sound`` is the one action every face calls: a start (a file's code,
or the pad's point between four corner codes), then slider moves and descriptor targets
(``targets.py``), decoded and rendered to a WAV.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from smalltrain.errors import DatasetError
from smalltrain.tasks.audio.data.io import load_audio
from smalltrain.tasks.audio.use.descriptors import DESCRIPTORS, describe, plain
from smalltrain.tasks.audio.use.directions import (
    OPPOSITES,
    SLIDERS,
    Direction,
    SliderEffect,
    fit_directions,
    measure_effect,
)
from smalltrain.tasks.audio.use.generate import LoadedModel
from smalltrain.tasks.audio.use.preview import render_mels, write_wav
from smalltrain.tasks.audio.use.targets import reach

__all__ = [
    "Exploration",
    "MapPoint",
    "Made",
    "encode_files",
    "explore",
    "make_sound",
    "pad_code",
    "parse_slider",
]

_BATCH = 64  # chunks encoded or decoded at once

#: A sound to start from: a file (path) or a point of the map (its index).
Source = str | Path | int


@dataclass(frozen=True)
class MapPoint:
    """One file on the map: where it is, what it is, what it measures."""

    index: int
    name: str  # the file's path inside its dataset folder
    folder: str  # the subfolder inside the dataset ("." at the top)
    split: str  # "train" or "held-out"
    x: float
    y: float
    descriptors: dict[str, float]
    path: str  # on this machine; never sent to a web page

    def to_dict(self, with_path: bool = True) -> dict[str, Any]:
        out = {"index": self.index, "name": self.name, "folder": self.folder,
               "split": self.split, "x": self.x, "y": self.y,
               "level": self.descriptors.get("level"), "descriptors": self.descriptors}  # fmt: skip
        if with_path:
            out["path"] = self.path
        return out


@dataclass
class Exploration:
    """A model's map and sliders (``explore``)."""

    loaded: LoadedModel
    points: list[MapPoint]
    codes: np.ndarray  # [N, D], one per point
    directions: list[Direction]
    effects: list[SliderEffect]
    spread: dict[str, float]  # each descriptor's std over the training sounds, as decoded
    explained: tuple[float, float]  # the variance share of the map's two axes
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def direction(self, name: str) -> tuple[Direction, float]:
        """The slider called ``name`` ("brighter", or its opposite "darker") and its sign.

        Raises:
            ValueError: no such slider, naming the ones there are.
        """
        for d in self.directions:
            if d.name == name:
                return d, 1.0
            if OPPOSITES.get(d.name) == name:
                return d, -1.0
        known = ", ".join(f"{d.name} (or {OPPOSITES[d.name]})" for d in self.directions)
        raise ValueError(f"{name!r}: no such slider; the sliders are {known}")

    def for_descriptor(self, descriptor: str) -> Direction:
        """The slider that moves ``descriptor``.

        Raises:
            ValueError: an unknown descriptor, naming the known ones.
        """
        for d in self.directions:
            if d.descriptor == descriptor:
                return d
        raise ValueError(
            f"{descriptor!r}: no such descriptor; the descriptors are {', '.join(DESCRIPTORS)}"
        )

    def measure(self, codes: np.ndarray) -> dict[str, np.ndarray]:
        """The descriptors of what the model decodes from ``codes`` ``[N, D]``."""
        return describe(self.loaded.spectrogram.denormalize(decode(self.loaded, codes)),
                        self.loaded.spectrogram.config)  # fmt: skip

    def to_dict(self, with_paths: bool = True) -> dict[str, Any]:
        """The map and the sliders as plain JSON (``with_paths=False`` for a web page)."""
        return {
            "model": str(self.loaded.path) if with_paths else self.loaded.path.name,
            "points": [p.to_dict(with_paths) for p in self.points],
            "explained": list(self.explained),
            "sliders": [
                e.to_dict() | {"r2": d.r2, "step": d.step}
                for d, e in zip(self.directions, self.effects, strict=True)
            ],  # fmt: skip
            "spread": self.spread,
            "notes": list(self.notes),
            "seconds": self.seconds,
        }


def _file_entries(loaded: LoadedModel) -> list[tuple[str, str, str]]:
    """``(path, name, split)`` of every file the checkpoint recorded, training files first."""
    ckpt = loaded.checkpoint
    out = []
    seen = set()
    for key, split in (("train_files", "train"), ("val_files", "held-out")):
        for entry in ckpt.get(key) or []:
            path = str(entry.get("path", ""))
            if path in seen:  # one file split in time is on both sides
                continue
            seen.add(path)
            out.append((path, str(entry.get("rel") or Path(path).name), split))
    return out


def _first_chunks(loaded: LoadedModel, paths: Sequence[str | Path]) -> torch.Tensor:
    """dB log-mels ``[N, n_mels, T]`` of the first chunk of each file."""
    size = loaded.config.chunk_samples
    waves = []
    for p in paths:
        wave = torch.from_numpy(load_audio(p, loaded.config.sample_rate)[:size])
        waves.append(torch.nn.functional.pad(wave, (0, size - wave.shape[0])))
    return loaded.spectrogram.log_mel(torch.stack(waves))


@torch.no_grad()
def encode_files(loaded: LoadedModel, paths: Sequence[str | Path]) -> tuple[np.ndarray, Any]:
    """The codes ``[N, D]`` (posterior means of each file's first chunk) and dB log-mels.

    Raises:
        AudioLoadError: a file is missing or not audio.
    """
    db = _first_chunks(loaded, paths)
    mels = loaded.spectrogram.normalize(db).unsqueeze(1)
    codes = [loaded.model.encode(b.to(loaded.device))[0].cpu() for b in mels.split(_BATCH)]
    return torch.cat(codes).double().numpy(), db


@torch.no_grad()
def decode(loaded: LoadedModel, codes: np.ndarray) -> torch.Tensor:
    """Normalized mels ``[N, n_mels, T]`` the model decodes from ``codes`` ``[N, D]`` (values
    under the floor clipped to it, as they render)."""
    z = torch.as_tensor(np.atleast_2d(codes), dtype=torch.float32)
    out = [loaded.model.decode(b.to(loaded.device))[:, 0].cpu() for b in z.split(_BATCH)]
    return torch.cat(out).clamp_min(0.0)


def _pca_2d(codes: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    centred = codes - codes.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    xy = np.zeros((codes.shape[0], 2))
    k = min(2, vt.shape[0])
    xy[:, :k] = centred @ vt[:k].T
    total = float((s**2).sum()) or 1.0
    share = [float(v**2) / total for v in s[:2]] + [0.0, 0.0]
    return xy, (share[0], share[1])


def explore(loaded: LoadedModel) -> Exploration:
    """Build the map and the sliders of a model from the files it recorded (see the module
    docstring). Files that are gone are left out, with a note.

    Raises:
        DatasetError: fewer than 3 recorded files are still readable.
    """
    import time

    started = time.perf_counter()
    notes: list[str] = []
    entries = []
    for path, name, split in _file_entries(loaded):
        if Path(path).is_file():
            entries.append((path, name, split))
        else:
            notes.append(f"{name} is missing ({path}); left off the map")
    if len(entries) < 3:
        raise DatasetError(
            f"{loaded.path}: only {len(entries)} of the files the model was trained on are "
            "still readable; exploring needs at least 3 (restore the training folder at its "
            "original path, or explore a model trained with `smalltrain train`)"
        )
    codes, db = encode_files(loaded, [e[0] for e in entries])
    own = describe(db, loaded.spectrogram.config)
    xy, explained = _pca_2d(codes)
    points = [
        MapPoint(
            i,
            name,
            str(Path(name).parent),
            split,
            float(xy[i, 0]),
            float(xy[i, 1]),
            {k: float(own[k][i]) for k in DESCRIPTORS},
            path,
        )  # fmt: skip
        for i, (path, name, split) in enumerate(entries)
    ]
    train = np.array([e[2] == "train" for e in entries])
    held = ~train
    if not held.any():
        held = train
        notes.append(
            "the model has no held-out files: slider effects are measured on training files"
        )
    exploration = Exploration(loaded, points, codes, [], [], {}, explained, notes)
    decoded = exploration.measure(codes[train])
    exploration.spread = {k: float(np.std(decoded[k])) for k in DESCRIPTORS}
    exploration.directions = fit_directions(codes[train], decoded)
    exploration.effects = [
        measure_effect(d, codes[held], exploration.measure, exploration.spread)
        for d in exploration.directions
    ]
    for e in exploration.effects:
        if not e.moves:
            notes.append(
                f"the {e.name} slider {e.verdict}: one unit changes {e.descriptor} by "
                f"{e.relative:+.2f} of its spread, the named way on {e.agree:.0%} of held-out files"
            )
    exploration.seconds = time.perf_counter() - started
    return exploration


def pad_code(corners: np.ndarray, u: float, v: float) -> np.ndarray:
    """The code at ``(u, v)`` of the pad: corners ``[4, D]`` are A (top left, u=0 v=0),
    B (top right), C (bottom left) and D (bottom right); codes are mixed bilinearly.

    Raises:
        ValueError: not four corners, or a point outside the square [0, 1]².
    """
    c = np.asarray(corners, dtype=np.float64)
    if c.shape[0] != 4:
        raise ValueError(f"the pad needs 4 corners (A, B, C, D), got {c.shape[0]}")
    if not (0.0 <= u <= 1.0 and 0.0 <= v <= 1.0):
        raise ValueError(f"--at {u:g},{v:g}: both must be between 0 and 1 (0,0 is corner A)")
    weights = np.array([(1 - u) * (1 - v), u * (1 - v), (1 - u) * v, u * v])
    return np.asarray(weights @ c)


def parse_slider(text: str) -> tuple[str, float]:
    """``"brighter=+1.5"`` -> ``("brighter", 1.5)``.

    Raises:
        ValueError: not NAME=NUMBER.
    """
    name, sep, value = text.partition("=")
    try:
        amount = float(value)
    except ValueError:
        amount = float("nan")
    if not sep or not name.strip() or not np.isfinite(amount):
        raise ValueError(f"{text!r}: write NAME=AMOUNT, e.g. brighter=+1.5 or shorter=1")
    return name.strip(), amount


@dataclass
class Made:
    """A sound ``make_sound`` rendered: the file, its code, its descriptors before the moves
    (the start, as the model decodes it) and after, and what happened on the way."""

    path: Path
    code: np.ndarray
    before: dict[str, float]
    after: dict[str, float]
    steps: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"file": str(self.path), "before": self.before, "after": self.after,
                "steps": self.steps, "notes": self.notes}  # fmt: skip


def _code_of(exploration: Exploration, source: Source) -> tuple[np.ndarray, str]:
    if isinstance(source, int):
        if not 0 <= source < len(exploration.points):
            raise ValueError(
                f"point {source}: the map has points 0 to {len(exploration.points) - 1}"
            )
        return exploration.codes[source], exploration.points[source].name
    codes, _ = encode_files(exploration.loaded, [source])
    return codes[0], Path(source).name


def start_code(
    exploration: Exploration,
    like: Source | None = None,
    corners: Sequence[Source] = (),
    at: tuple[float, float] = (0.5, 0.5),
) -> tuple[np.ndarray, str]:
    """The code to start from and how it was made: a file's (``like``), or the pad's point.

    Raises:
        ValueError: neither or both given, or not four corners.
    """
    if (like is None) == (not corners):
        raise ValueError("start from one sound (--like FILE) or from four corners (--corner x4)")
    if like is not None:
        code, name = _code_of(exploration, like)
        return code, f"start: {name}"
    if len(corners) != 4:
        raise ValueError(f"the pad needs 4 corners (A, B, C, D), got {len(corners)}")
    found = [_code_of(exploration, c) for c in corners]
    code = pad_code(np.stack([c for c, _ in found]), *at)
    names = ", ".join(n for _, n in found)
    return code, f"pad at {at[0]:g},{at[1]:g} between {names}"


def make_sound(
    exploration: Exploration,
    out_path: str | Path,
    *,
    like: Source | None = None,
    corners: Sequence[Source] = (),
    at: tuple[float, float] = (0.5, 0.5),
    slides: Sequence[tuple[str, float]] = (),
    targets: Mapping[str, float] | None = None,
) -> Made:
    """A start (``start_code``), moved by each slide ("brighter", +1.5) in turn, then to each
    descriptor target ({"decay": 0.7}: 0.7 times the start's value), rendered to ``out_path``.

    Raises:
        ValueError: an unknown slider or descriptor, a bad start.
    """
    code, first = start_code(exploration, like, corners, at)
    steps = [first]
    notes: list[str] = []
    before = plain({k: v[0] for k, v in exploration.measure(code[None]).items()})
    for name, amount in slides:
        direction, sign = exploration.direction(name)
        code = direction.move(code, sign * amount)
        steps.append(f"{name} {amount:+g}")
    for descriptor, factor in (targets or {}).items():
        code, result = reach(exploration, code, descriptor, factor, before.get(descriptor))
        steps.append(result.describe())
        if not result.hit:
            notes.append(result.describe())
    path = render(exploration.loaded, code, out_path)
    after = plain({k: v[0] for k, v in exploration.measure(code[None]).items()})
    return Made(path, code, before, after, steps, notes)


@torch.no_grad()
def render(loaded: LoadedModel, code: np.ndarray, out_path: str | Path) -> Path:
    """Decode one code and write it as a WAV (one chunk long)."""
    z = torch.as_tensor(np.atleast_2d(code), dtype=torch.float32, device=loaded.device)
    wave = render_mels(loaded.model.decode(z), loaded.spectrogram)[0]
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_wav(out, wave, loaded.spectrogram.config.sample_rate)


def slider_names() -> list[str]:
    """Every name a slide may use: the sliders and their opposites."""
    return [*SLIDERS, *OPPOSITES.values()]
