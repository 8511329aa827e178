"""Descriptor targets: "like this kick, but 30% shorter decay" (``decay=0.7``).

``reach`` moves a code along the slider of a descriptor until the decoded sound measures the
target (``factor`` times what the start measures). It searches slider amounts in
``[-LIMIT, LIMIT]`` in two batched passes (a coarse grid, then a fine one around the crossing
nearest the start), so it costs two decodes of a few dozen codes, not a loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from smalltrain.tasks.audio.use.descriptors import format_value
from smalltrain.tasks.audio.use.directions import Direction


class Exploration(Protocol):
    """What ``reach`` needs of ``explore.Exploration`` (a protocol: no import circle)."""

    spread: dict[str, float]

    def measure(self, codes: np.ndarray) -> Mapping[str, np.ndarray]: ...

    def for_descriptor(self, descriptor: str) -> Direction: ...


__all__ = ["LIMIT", "TargetResult", "parse_target", "reach"]

#: The farthest a target moves a code, in slider units either way.
LIMIT = 4.0
_COARSE = 33
_FINE = 17
_TOLERANCE = 0.05  # a target counts as hit within 5% of its value (or of the spread)


@dataclass(frozen=True)
class TargetResult:
    """How a target went: the start's value, the target, what was reached, in slider units."""

    descriptor: str
    factor: float
    start: float
    target: float
    reached: float
    amount: float
    hit: bool

    def describe(self) -> str:
        f = self.descriptor
        where = f"{self.amount:+.2f} units along the {f} slider"
        text = (
            f"{f} x{self.factor:g}: {format_value(f, self.start)} -> target "
            f"{format_value(f, self.target)}, reached {format_value(f, self.reached)} ({where})"
        )
        if not self.hit:
            text += "; the target is out of this model's reach from this sound"
        return text


def parse_target(text: str) -> tuple[str, float]:
    """``"decay=0.7"`` -> ``("decay", 0.7)``.

    Raises:
        ValueError: not NAME=FACTOR with a factor > 0.
    """
    name, sep, value = text.partition("=")
    try:
        factor = float(value)
    except ValueError:
        factor = float("nan")
    if not sep or not name.strip() or not np.isfinite(factor) or factor <= 0:
        raise ValueError(
            f"{text!r}: write DESCRIPTOR=FACTOR with a factor > 0, e.g. decay=0.7 (30% shorter)"
        )
    return name.strip(), factor


def _crossing(amounts: np.ndarray, gap: np.ndarray) -> tuple[float, float] | None:
    """The bracket ``(a0, a1)`` of the sign change of ``gap`` nearest amount 0, or None."""
    signs = np.sign(gap)
    found = np.nonzero(signs[:-1] * signs[1:] <= 0)[0]
    if found.size == 0:
        return None
    i = found[np.argmin(np.abs(amounts[found] + amounts[found + 1]))]
    return float(amounts[i]), float(amounts[i + 1])


def _along(
    exploration: Exploration, code: np.ndarray, unit: np.ndarray, amounts: np.ndarray, name: str
) -> np.ndarray:
    """``name`` measured on ``code`` moved by each of ``amounts`` times ``unit``."""
    return np.asarray(exploration.measure(code[None] + np.outer(amounts, unit))[name])


def reach(
    exploration: Exploration,
    code: np.ndarray,
    descriptor: str,
    factor: float,
    reference: float | None = None,
) -> tuple[np.ndarray, TargetResult]:
    """Move ``code`` along ``descriptor``'s slider until it measures ``factor`` times
    ``reference`` (default: what ``code`` itself measures; ``make_sound`` passes the start's
    value, so that slides before a target do not change what it is relative to).

    Returns the new code and how it went (``hit`` is False when no amount within ``LIMIT``
    units reaches the target; the closest is used).

    Raises:
        ValueError: an unknown descriptor, or a factor <= 0.
    """
    if not factor > 0:
        raise ValueError(f"{descriptor}={factor:g}: the factor must be > 0")
    direction = exploration.for_descriptor(descriptor)
    start = (
        float(exploration.measure(code[None])[descriptor][0]) if reference is None else reference
    )
    # level is in dB: "x0.7" means 0.7 times the power
    level = descriptor == "level"
    target = start + 10.0 * float(np.log10(factor)) if level else start * factor
    amounts = np.linspace(-LIMIT, LIMIT, _COARSE)
    values = _along(exploration, code, direction.vector * direction.step, amounts, descriptor)
    bracket = _crossing(amounts, values - target)
    if bracket is not None:
        amounts = np.linspace(*bracket, _FINE)
        values = _along(exploration, code, direction.vector * direction.step, amounts, descriptor)
    best = int(np.argmin(np.abs(values - target)))
    amount, reached = float(amounts[best]), float(values[best])
    scale = max(abs(target), exploration.spread.get(descriptor, 0.0), 1e-9)
    hit = bracket is not None and abs(reached - target) <= _TOLERANCE * scale
    result = TargetResult(descriptor, factor, start, target, reached, amount, hit)
    return direction.move(code, amount), result
