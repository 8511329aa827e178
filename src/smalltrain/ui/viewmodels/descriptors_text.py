"""Descriptor values as the UI writes them (the task's ``format_value``, without importing
the task's numpy code into the server process)."""

from __future__ import annotations

__all__ = ["NAMES", "fmt"]

NAMES = ("brightness", "decay", "noisiness", "level")
_UNITS = {"brightness": ("Hz", 0), "decay": ("s", 3), "noisiness": ("", 3), "level": ("dB", 1)}


def fmt(name: str, value: float | None, signed: bool = False) -> str:
    """``1234 Hz``, ``0.420 s``, ``0.080``, ``-12.0 dB`` (``+`` shown when ``signed``)."""
    if value is None:
        return "-"
    unit, digits = _UNITS.get(name, ("", 3))
    sign = "+" if signed else ""
    return f"{float(value):{sign}.{digits}f} {unit}".strip()
