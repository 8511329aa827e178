"""Crash-safe file writes and file hashing.

Every file the engine writes (checkpoints, sidecars, registry.json, metrics.json, config.yaml)
goes through ``atomic_write_bytes``: the bytes land in a temporary file in the same folder, are
flushed and fsynced, then renamed over the target, and the folder is fsynced so the rename itself
survives a power cut. A reader therefore sees either the old file or the new one, never half of
either. A failure while writing leaves the old file as it was and removes the temporary file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

_CHUNK = 1 << 20


def _fsync_dir(directory: Path) -> None:
    """Fsync a directory so a rename inside it is durable (a no-op where unsupported)."""
    if os.name == "nt":  # Windows cannot open a directory for fsync
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], Any]) -> Path:
    """Write a file atomically by calling ``write(fileobj)`` on a temporary file beside it.

    Args:
        path: the target file; its parent folder is created if missing.
        write: a function that writes the content to the open binary file it is given.

    Returns:
        The target path.

    Raises:
        Whatever ``write`` or the file system raises; the target is then left untouched and the
        temporary file is removed.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(target.parent)
    return target


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename, fsync folder)."""
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 2) -> Path:
    """Serialise ``obj`` as strict JSON and write it atomically.

    Serialisation happens before the temporary file is created, so an object that cannot be
    serialised leaves nothing behind.

    Raises:
        TypeError / ValueError: ``obj`` is not JSON-serialisable (NaN/inf included: strict JSON
        has no NaN, so encode them yourself, e.g. as strings).
    """
    text = json.dumps(obj, indent=indent, allow_nan=False, sort_keys=False)
    return atomic_write_text(path, text + "\n")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Return the hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Return the hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
