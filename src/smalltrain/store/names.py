"""Validation of dataset and model names, which become folder names on disk."""

from __future__ import annotations

import unicodedata

from smalltrain.errors import InvalidName

__all__ = ["MAX_NAME_LENGTH", "validate_name"]

MAX_NAME_LENGTH = 64


def _rule_broken(name: str) -> str | None:
    if not name:
        return "must not be empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"must be at most {MAX_NAME_LENGTH} characters (it has {len(name)})"
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in name):
        return "must not contain control characters"
    if "/" in name or "\\" in name:
        return "must not contain path separators ('/' or '\\')"
    if ".." in name:
        return "must not contain '..'"
    if name.startswith("."):
        return "must not start with a dot"
    if name != name.strip():
        return "must not start or end with whitespace"
    return None


def validate_name(name: object, what: str = "name") -> str:
    """Return ``name`` if it is safe as a single folder name.

    Rules: non-empty; at most 64 characters; no control characters; no path separators; no
    ``..``; no leading dot; no leading or trailing whitespace.

    Raises:
        InvalidName: naming the rule that was broken, e.g.
            ``model name '../x': must not contain path separators ('/' or '\\')``.
    """
    if not isinstance(name, str):
        raise InvalidName(f"{what} {name!r}: must be a string")
    rule = _rule_broken(name)
    if rule is not None:
        raise InvalidName(f"{what} {name!r}: {rule}")
    return name
