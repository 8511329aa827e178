"""One conversion of values into plain JSON/YAML data, used by events, sidecars and registries."""

from __future__ import annotations

import enum
import math
import os
from collections.abc import Mapping
from typing import Any

__all__ = ["fmt_number", "plain", "plural"]


def plain(value: Any) -> Any:
    """A copy of ``value`` made of dicts, lists, str, int, float, bool and None.

    Non-finite floats become "nan", "inf" or "-inf" (strict JSON has no NaN); mappings get
    string keys; tuples and sets become lists; paths become strings; enums their value;
    numpy scalars and 0-d tensors their Python number; anything else its ``str``.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, enum.Enum):
        return plain(value.value)
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return plain(item())
        except (TypeError, ValueError):  # an array of more than one element
            pass
    return str(value)


def fmt_number(value: float) -> str:
    """A float for a person: 4 significant digits, scientific only when very small or large."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
        return f"{value:.3e}"
    return f"{value:.4g}"


def plural(count: int, noun: str) -> str:
    """``1 image``, ``2 images``, ``0 boxes``: a count and its noun, in the right number."""
    if count == 1:
        return f"1 {noun}"
    ending = "es" if noun.endswith(("s", "x", "sh", "ch")) else "s"
    return f"{count} {noun}{ending}"
