"""Sliders with meaning: the direction in code space that best predicts each descriptor.

For each descriptor of ``descriptors.py`` a ridge regression of the descriptor on the codes of
the training files gives a direction (``Direction``), named after what it moves: "brighter",
"longer", "noisier", "louder". One slider unit is the training codes' spread along it, so +1 is
as far as the training sounds typically differ that way.

A direction that predicts a descriptor need not move it when the model decodes: the decoder may
ignore it. ``measure_effect`` checks that on held-out files: each is decoded one unit either
side of its own code and measured, so a slider that does nothing shows (``SliderEffect.moves``)
and so do its side effects on the other descriptors (``SliderEffect.table``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from smalltrain.tasks.audio.use.descriptors import DESCRIPTORS

__all__ = [
    "MIN_AGREE",
    "MIN_RELATIVE",
    "SLIDERS",
    "Direction",
    "SliderEffect",
    "fit_direction",
    "fit_directions",
    "measure_effect",
    "random_direction",
]

#: Slider name -> the descriptor it raises; a negative amount moves the other way.
SLIDERS = {"brighter": "brightness", "longer": "decay", "noisier": "noisiness", "louder": "level"}
#: The word for a negative move, for messages ("darker" is "brighter" at -1).
OPPOSITES = {"brighter": "darker", "longer": "shorter", "noisier": "cleaner", "louder": "quieter"}
#: A slider moves its descriptor when one unit changes it by at least this fraction of the
#: descriptor's spread over the training sounds (as the model decodes them) ...
MIN_RELATIVE = 0.1
#: ... and moves it the named way on at least this fraction of the held-out files.
MIN_AGREE = 0.75
_RIDGE = 0.05  # the ridge penalty, as a fraction of the codes' mean variance per dimension

Measure = Callable[[np.ndarray], Mapping[str, np.ndarray]]  # codes [N, D] -> descriptors


@dataclass(frozen=True)
class Direction:
    """A slider: ``vector`` (unit norm, ``[D]``) raises ``descriptor``; one unit of the slider
    moves a code ``step`` along it. ``r2`` is how much of the descriptor's variance over the
    training files the codes explain along the fit (1 = all of it)."""

    name: str
    descriptor: str
    vector: np.ndarray
    step: float
    r2: float

    def move(self, codes: np.ndarray, amount: float) -> np.ndarray:
        """``codes`` (``[D]`` or ``[N, D]``) moved ``amount`` slider units along the direction."""
        return np.asarray(codes, dtype=np.float64) + float(amount) * self.step * self.vector

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "descriptor": self.descriptor, "step": self.step,
                "r2": self.r2, "vector": [float(v) for v in self.vector]}  # fmt: skip


def fit_direction(
    codes: np.ndarray, values: np.ndarray, name: str, descriptor: str, ridge: float = _RIDGE
) -> Direction:
    """The ridge regression of ``values`` ``[N]`` on ``codes`` ``[N, D]``, as a ``Direction``.

    Raises:
        ValueError: fewer than 2 codes, or a descriptor that does not vary over them.
    """
    z = np.asarray(codes, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    if z.shape[0] < 2:
        raise ValueError(f"{name}: needs at least 2 training files to fit, got {z.shape[0]}")
    zc, yc = z - z.mean(axis=0), y - y.mean()
    gram = zc.T @ zc
    penalty = ridge * max(float(np.trace(gram)) / z.shape[1], 1e-12)
    w = np.linalg.solve(gram + penalty * np.eye(z.shape[1]), zc.T @ yc)
    norm = float(np.linalg.norm(w))
    if norm == 0.0 or not np.isfinite(norm):
        raise ValueError(f"{name}: {descriptor} does not vary over the training files")
    total = float(yc @ yc)
    r2 = 1.0 - float(((yc - zc @ w) ** 2).sum()) / total if total > 0 else 0.0
    vector = w / norm
    step = float(np.std(zc @ vector)) or 1.0
    return Direction(name, descriptor, vector, step, r2)


def fit_directions(codes: np.ndarray, table: Mapping[str, np.ndarray]) -> list[Direction]:
    """One ``Direction`` per slider of ``SLIDERS`` whose descriptor is in ``table``."""
    return [
        fit_direction(codes, table[descriptor], name, descriptor)
        for name, descriptor in SLIDERS.items()
        if descriptor in table
    ]


def random_direction(codes: np.ndarray, name: str, descriptor: str, seed: int = 0) -> Direction:
    """A direction drawn at random, with the step rule of the fitted ones (what a slider of
    noise looks like, to compare with)."""
    rng = np.random.default_rng(seed)
    vector = rng.standard_normal(np.asarray(codes).shape[1])
    vector /= np.linalg.norm(vector)
    z = np.asarray(codes, dtype=np.float64)
    step = float(np.std((z - z.mean(axis=0)) @ vector)) or 1.0
    return Direction(name, descriptor, vector, step, 0.0)


@dataclass(frozen=True)
class SliderEffect:
    """What one slider unit does on held-out files.

    ``per_unit``: the mean change of its descriptor per unit (descriptor units); ``relative``:
    the same over the descriptor's spread across the training sounds; ``agree``: the fraction
    of files it moved the named way; ``table``: every descriptor's mean at -1, 0 and +1 unit
    (the side effects)."""

    name: str
    descriptor: str
    per_unit: float
    relative: float
    agree: float
    files: int
    table: dict[str, tuple[float, float, float]] = field(default_factory=dict)

    @property
    def moves(self) -> bool:
        """Whether the slider moves its descriptor (see ``MIN_RELATIVE``, ``MIN_AGREE``)."""
        return self.relative >= MIN_RELATIVE and self.agree >= MIN_AGREE

    @property
    def verdict(self) -> str:
        if self.moves:
            return "moves it"
        if self.per_unit <= 0 or self.agree < 0.5:
            return "does NOT move it (noise)"
        return "weak"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "descriptor": self.descriptor,
            "per_unit": self.per_unit,
            "relative": self.relative,
            "agree": self.agree,
            "files": self.files,
            "moves": self.moves,
            "verdict": self.verdict,
            "table": {k: list(v) for k, v in self.table.items()},
        }


def measure_effect(
    direction: Direction,
    codes: np.ndarray,
    measure: Measure,
    spread: Mapping[str, float],
    amount: float = 1.0,
) -> SliderEffect:
    """Decode each of ``codes`` (held-out files, ``[N, D]``) ``amount`` units either side along
    ``direction`` and measure what moved; ``spread``: each descriptor's standard deviation over
    the training sounds."""
    z = np.asarray(codes, dtype=np.float64)
    n = z.shape[0]
    batch = np.concatenate([direction.move(z, -amount), z, direction.move(z, amount)])
    values = measure(batch)
    table = {}
    for name in DESCRIPTORS:
        if name in values:
            v = np.asarray(values[name])
            table[name] = (
                float(v[:n].mean()),
                float(v[n : 2 * n].mean()),
                float(v[2 * n :].mean()),
            )
    v = np.asarray(values[direction.descriptor])
    change = (v[2 * n :] - v[:n]) / (2 * amount)
    per_unit = float(change.mean())
    scale = float(spread.get(direction.descriptor, 0.0))
    relative = per_unit / scale if scale > 0 else 0.0
    agree = float((change > 0).mean())
    return SliderEffect(direction.name, direction.descriptor, per_unit, relative, agree, n, table)
