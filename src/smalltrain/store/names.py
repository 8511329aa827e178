"""Validation of dataset and model names, which become folder names on disk."""

from __future__ import annotations

import unicodedata

from smalltrain.errors import InvalidName, shorten

__all__ = ["MAX_NAME_LENGTH", "looks_like_path", "validate_name"]

MAX_NAME_LENGTH = 64
# A reference ending like a file ("missing.yaml", "kick.wav") is a path, not a name.
_FILE_SUFFIXES = (".yaml", ".yml", ".pt", ".pth", ".wav", ".flac", ".ogg", ".mp3", ".aif",
                  ".aiff", ".jpg", ".jpeg", ".png", ".txt", ".json")  # fmt: skip


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
        raise InvalidName(f"{what} {shorten(name)!r}: must be a string")
    rule = _rule_broken(name)
    if rule is not None:
        raise InvalidName(f"{what} {shorten(name)!r}: {rule}")
    return name


def looks_like_path(text: str) -> bool:
    """Whether ``text`` was meant as a path rather than a dataset or model name.

    True for anything that is not a valid name (separators, "..", a leading dot) and for a
    name ending like a file ("data.yaml"). Hints then never suggest registering it as a name.
    """
    if _rule_broken(text) is not None or text.startswith("~"):
        return True
    return text.lower().endswith(_FILE_SUFFIXES)
