"""Crash-safe file writes and file hashing.

Every file the engine writes (checkpoints, sidecars, registry.json, metrics.json, config.yaml)
goes through ``atomic_write_bytes``: the bytes land in a temporary file in the same folder, are
flushed and fsynced, then renamed over the target, and the folder is fsynced so the rename itself
survives a power cut. A reader therefore sees either the old file or the new one, never half of
either. A failure while writing leaves the old file as it was and removes the temporary file.

A full disk (ENOSPC, EDQUOT, or torch's "unexpected pos" short-write error) becomes one
``DiskFull`` error that names the file, the space it needed and the space left
(``disk_full_error``); ``ensure_free`` checks the space before a write whose size is known.
A process killed mid-write leaves a temporary ``.<name>.<random>.tmp`` file beside the target;
``remove_partial_writes`` deletes such leftovers when nobody can be writing the folder.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from smalltrain.errors import DiskFull

_CHUNK = 1 << 20
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# What a full disk looks like once a library has turned the OSError into text: torch's zip
# writer ("unexpected pos 467520 vs 467472", "file write failed"), SQLite ("database or disk is
# full"), and strerror texts.
_DISK_FULL_TEXT = (
    "unexpected pos",
    "file write failed",
    "no space left on device",
    "disk quota exceeded",
    "database or disk is full",
)
#: The temporary files ``atomic_write`` creates: ``.<target name>.<8 random chars>.tmp``.
PARTIAL_WRITE_RE = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")


# --- free space and full disks --------------------------------------------------------------


def format_size(n: float | None) -> str:
    """``512 B``, ``296 KB``, ``1.4 MB``, ``2.0 GB`` (powers of 1024)."""
    if n is None:
        return "an unknown amount"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit in ("B", "KB") else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover - the loop always returns


def _existing(path: Path) -> Path:
    """``path`` or its nearest existing ancestor."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_bytes(path: str | os.PathLike[str]) -> int | None:
    """Bytes an unprivileged user may still write on the disk holding ``path`` (or None)."""
    try:
        return int(shutil.disk_usage(_existing(Path(path))).free)
    except OSError:
        return None


def mount_point(path: str | os.PathLike[str]) -> Path:
    """The mount point of the file system holding ``path``."""
    found = _existing(Path(path))
    while not os.path.ismount(found) and found != found.parent:
        found = found.parent
    return found


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an exception it was raised from) means the disk or quota is full."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DiskFull):
            return True
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL_ERRNOS:
            return True
        if isinstance(exc, (OSError, RuntimeError)) or type(exc).__name__ == "OperationalError":
            text = str(exc).lower()
            if any(marker in text for marker in _DISK_FULL_TEXT):
                return True
        exc = exc.__cause__ or exc.__context__
    return False


def _quota(exc: BaseException | None) -> bool:
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno == errno.EDQUOT:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def disk_full_error(
    path: str | os.PathLike[str],
    needed: int | None = None,
    exc: BaseException | None = None,
    *,
    at_least: bool = False,
    what: str = "",
) -> DiskFull:
    """The one clear error for a write that found no space: the path, space needed and left.

    Args:
        path: the file that could not be written.
        needed: the bytes the write needed (``at_least``: it needed more), or None if unknown.
        exc: the original error (an EDQUOT says "quota" instead of "disk").
        what: what the file is ("checkpoint", "model registry"...), for the message.
    """
    if isinstance(exc, DiskFull):
        return exc
    free = free_bytes(path)
    where = mount_point(path)
    full = "your disk quota is used up" if _quota(exc) else f"the disk holding {where} is full"
    if needed is None:
        need = f"needs more than the {format_size(free)} left"
    elif at_least:
        need = (
            f"needs more than the {format_size(needed)} written when the disk ran out, "
            f"{format_size(free)} left"
        )
    else:
        need = f"needs {format_size(needed)}, {format_size(free)} left"
    label = f"{what} " if what else ""
    return DiskFull(
        f"no space left to write {label}{os.fspath(path)}: {full} ({need}). "
        f"Free some space on {where} or move the folder to a larger disk, then try again",
        os.fspath(path),
        needed,
        free,
    )


def ensure_free(
    path: str | os.PathLike[str], needed: int, *, margin: int = 1 << 20, what: str = ""
) -> None:
    """Raise ``DiskFull`` before a write of ``needed`` bytes that cannot fit with ``margin``.

    The margin keeps room for the database and the small files written after it (a sidecar,
    the job's final status). Where free space cannot be read, nothing is checked.
    """
    free = free_bytes(Path(path).parent)
    if free is not None and free < needed + margin:
        raise disk_full_error(path, needed + margin, what=what)


def require_free(folder: str | os.PathLike[str], needed: int, purpose: str) -> None:
    """Raise ``DiskFull`` up front when the disk holding ``folder`` has less than ``needed``
    bytes free for ``purpose`` (e.g. "to start a job"). Unknown free space passes."""
    free = free_bytes(folder)
    if free is None or free >= needed:
        return
    where = mount_point(folder)
    raise DiskFull(
        f"not enough free space {purpose}: {format_size(free)} left on {where} (which holds "
        f"{os.fspath(folder)}), at least {format_size(needed)} needed. Free some space on "
        f"{where}, or use a folder on a larger disk",
        os.fspath(folder),
        needed,
        free,
    )


class SpaceReserve:
    """A file that holds a little disk space back, given up when the disk fills up.

    The scheduler keeps one in the home: when a full disk refuses a job's final status, it
    releases the reserve and writes the status again, so a job never stays "running" just
    because the disk filled up during its last minutes.

    Args:
        path: the reserve file.
        size: bytes to hold back.
    """

    def __init__(self, path: str | os.PathLike[str], size: int = 1 << 20) -> None:
        self.path = Path(path)
        self.size = size

    def ensure(self) -> bool:
        """Create the reserve if missing and the disk has room to spare (8× its size);
        return whether it exists now. Never raises."""
        with contextlib.suppress(OSError):
            if self.path.is_file() and self.path.stat().st_size >= self.size:
                return True
            free = free_bytes(self.path.parent)
            if free is None or free < 8 * self.size:
                return False
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                if hasattr(os, "posix_fallocate"):  # Linux; macOS has none
                    os.posix_fallocate(fd, 0, self.size)
                else:
                    os.write(fd, bytes(self.size))
                    os.fsync(fd)
            finally:
                os.close(fd)
            return True
        with contextlib.suppress(OSError):
            self.path.unlink()
        return False

    def release(self) -> bool:
        """Give the space back; True if there was a reserve to release."""
        try:
            self.path.unlink()
        except OSError:
            return False
        return True


def remove_partial_writes(
    directory: str | os.PathLike[str], *, older_than_s: float | None = None
) -> list[Path]:
    """Delete the temporary files ``atomic_write`` left in ``directory`` when a process died
    mid-write; return them. Call it only when nothing else may be writing that folder, or give
    ``older_than_s`` for a shared folder (a cache): only files untouched that long go."""
    folder = Path(directory)
    if not folder.is_dir():
        return []
    cutoff = None if older_than_s is None else time.time() - older_than_s
    removed = []
    for path in folder.iterdir():
        if not PARTIAL_WRITE_RE.match(path.name):
            continue
        with contextlib.suppress(FileNotFoundError):
            if not path.is_file() or (cutoff is not None and path.stat().st_mtime > cutoff):
                continue
            path.unlink()
            removed.append(path)
    return removed


# --- atomic writes --------------------------------------------------------------------------


def _fsync_dir(directory: Path) -> None:
    """Fsync a directory so a rename inside it is durable (a no-op where unsupported)."""
    if os.name == "nt":  # Windows cannot open a directory for fsync
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def new_file_mode() -> int:
    """The mode ``open()`` gives a new file: 0o666 less the process's umask (mkstemp's files
    are 0o600, so a file written through a temporary one would be readable by its owner
    alone: generated sounds, predictions, a model's files shared with a group)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            umask = next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        umask = os.umask(0o022)  # no /proc: read it by setting it, and put it back at once
        os.umask(umask)
    return 0o666 & ~umask


def atomic_write(
    path: str | os.PathLike[str],
    write: Callable[[IO[bytes]], Any],
    *,
    size: int | None = None,
    what: str = "",
    before_replace: Callable[[Path, Path], None] | None = None,
) -> Path:
    """Write a file atomically by calling ``write(fileobj)`` on a temporary file beside it.
    The file gets the mode a plain ``open()`` would give it (``new_file_mode``).

    Args:
        path: the target file; its parent folder is created if missing.
        write: a function that writes the content to the open binary file it is given.
        size: the number of bytes ``write`` writes, when known (for a full disk's message).
        what: what the file is ("checkpoint", "model registry"), for a full disk's message.
        before_replace: called as ``before_replace(tmp, target)`` once the temporary file is
            complete and fsynced, just before the rename (tests hold a process there).

    Returns:
        The target path.

    Raises:
        DiskFull: no space left (ENOSPC, EDQUOT, torch's short-write error); it names the
            file, the space needed and the space left.
        Whatever else ``write`` or the file system raises. Either way the target is left
        untouched and the temporary file is removed.
    """
    target = Path(path)
    tmp: Path | None = None
    written = 0
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        tmp = Path(tmp_name)
        os.fchmod(fd, new_file_mode())
        with os.fdopen(fd, "wb") as f:
            try:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            finally:
                with contextlib.suppress(Exception):
                    written = f.tell()
        if before_replace is not None:
            before_replace(tmp, target)
        os.replace(tmp, target)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        if isinstance(exc, Exception) and is_disk_full(exc):
            needed, at_least = (size, False) if size is not None else (written or None, True)
            raise disk_full_error(target, needed, exc, at_least=at_least, what=what) from exc
        raise
    _fsync_dir(target.parent)
    return target


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, what: str = "") -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename, fsync folder)."""
    return atomic_write(path, lambda f: f.write(data), size=len(data), what=what)


def atomic_write_text(
    path: str | os.PathLike[str], text: str, encoding: str = "utf-8", *, what: str = ""
) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode(encoding), what=what)


def atomic_write_json(
    path: str | os.PathLike[str], obj: Any, *, indent: int | None = 2, what: str = ""
) -> Path:
    """Serialise ``obj`` as strict JSON and write it atomically.

    Serialisation happens before the temporary file is created, so an object that cannot be
    serialised leaves nothing behind.

    Raises:
        TypeError / ValueError: ``obj`` is not JSON-serialisable (NaN/inf included: strict JSON
        has no NaN, so encode them yourself, e.g. as strings).
    """
    text = json.dumps(obj, indent=indent, allow_nan=False, sort_keys=False)
    return atomic_write_text(path, text + "\n", what=what)


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


def replace_folder(staging: Path, folder: Path) -> None:
    """Rename the finished folder ``staging`` to ``folder``; an old ``folder`` is moved aside
    first (and put back if the rename fails), then removed."""
    old = None
    if folder.exists():
        old = folder.with_name(f".old-{folder.name}-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(folder, old)
    try:
        os.replace(staging, folder)
    except OSError:
        if old is not None:
            os.replace(old, folder)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
