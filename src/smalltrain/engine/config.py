"""Helpers shared by the tasks' typed, frozen configs.

``apply_overrides`` refuses numbers no training can use before any rule of the task runs:
NaN, infinite floats and floats beyond float32's range (``learning_rate=1e308`` would overflow
the first tensor it meets, far from the field's name), and integers beyond int64.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from smalltrain.errors import ConfigError

C = TypeVar("C")

#: The largest float32: tensors hold config floats (learning rates, weights) as float32.
FLOAT32_MAX = 3.4028234663852886e38
_INT64 = 1 << 63


def parse_assignments(pairs: Iterable[str]) -> dict[str, str]:
    """Parse ``["epochs=5", "lr=1e-3"]`` (the CLI's ``--set``) into a dict of strings.

    Raises:
        ConfigError: an item has no ``=``.
    """
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError("--set", pair, "must look like key=value, e.g. --set epochs=5")
        out[key.strip()] = value.strip()
    return out


def _coerce_union(name: str, text: str, args: tuple[Any, ...]) -> Any:
    if text.lower() in ("none", "null", "") and type(None) in args:
        return None
    for arg in args:
        if arg is type(None):
            continue
        try:
            return _coerce(name, text, arg)
        except ConfigError:
            continue
    raise ConfigError(name, text, f"must be one of {args}")


def _coerce_bool(name: str, text: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ConfigError(name, text, "must be true or false")


#: What a value that does not parse should have been, by the field's type.
_KIND_OF = {int: "must be a whole number", float: "must be a number", str: "must be text"}


def _coerce(name: str, text: str, annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(name, text, args)
    if origin is typing.Literal:
        if text in args:
            return text
        raise ConfigError(name, text, f"must be one of {list(args)}")
    if origin in (tuple, list):
        inner = args[0] if args else str
        values = [
            _coerce(name, t.strip(), inner) for t in text.strip("[]()").split(",") if t.strip()
        ]
        return tuple(values) if origin is tuple else values
    if annotation is bool:
        return _coerce_bool(name, text)
    if annotation in (int, float, str):
        try:
            return annotation(text)
        except ValueError:
            raise ConfigError(name, text, _KIND_OF[annotation]) from None
    return text


def unknown_field(key: str, value: Any, fields: Iterable[str]) -> ConfigError:
    """The error for a field that does not exist, suggesting the nearest name.

    E.g. ``epoch=5: unknown field; did you mean epochs? (smalltrain config show lists all)``.
    """
    names = sorted(fields)
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    if not close:  # "lr" -> "learning_rate": a known field that starts with or contains it
        close = [n for n in names if key and key.lower() in n.lower()][:1]
    hint = f"did you mean {close[0]}? " if close else ""
    return ConfigError(
        key,
        value,
        f"unknown field; {hint}valid fields: {', '.join(names)} "
        "(smalltrain config show describes each)",
    )


def check_number(name: str, value: Any) -> None:
    """Refuse a float that is NaN, infinite or beyond float32, or an int beyond int64
    (in lists and tuples too).

    Raises:
        ConfigError: naming the field, the value and the rule.
    """
    if isinstance(value, (list, tuple)):
        for item in value:
            check_number(name, item)
        return
    if isinstance(value, bool):
        return
    if isinstance(value, float) and (not math.isfinite(value) or abs(value) > FLOAT32_MAX):
        raise ConfigError(
            name, value, f"must be a finite number no larger than {FLOAT32_MAX:.3g} in magnitude"
        )
    if isinstance(value, int) and not -_INT64 <= value < _INT64:
        raise ConfigError(name, value, "must fit in 64 bits (|x| < 9.2e18)")


def apply_overrides(config: C, overrides: Mapping[str, Any]) -> C:
    """Return a copy of a dataclass config with ``overrides`` applied and validated.

    String values (from the CLI) are converted to each field's declared type.

    Raises:
        ConfigError: an unknown field, a number no training can use (``check_number``), or a
            value that breaks a rule of the config.
    """
    if not overrides:
        return config
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"apply_overrides needs a dataclass instance, not {config!r}")
    hints = typing.get_type_hints(type(config))
    fields = {f.name for f in dataclasses.fields(config)}
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in fields:
            raise unknown_field(key, value, fields)
        changes[key] = _coerce(key, value, hints[key]) if isinstance(value, str) else value
        check_number(key, changes[key])
    return dataclasses.replace(config, **changes)  # __post_init__ validates


def check(field: str, value: Any, ok: bool, rule: str) -> None:
    """Raise ConfigError(field, value, rule) unless ``ok``."""
    if not ok:
        raise ConfigError(field, value, rule)
