"""Inter-process locks on files (``fcntl.flock``), and process liveness.

- ``FileLock(path)``: an exclusive lock held through an open file. Use it as a context manager
  or call ``acquire(blocking=True, timeout=None)`` / ``release()``. It is not reentrant: one
  ``FileLock`` object may be held once. Two ``FileLock`` objects on one path exclude each other,
  in one process (across threads) as across processes. The kernel drops the lock when the
  holder dies, so a crash never leaves a stale lock. Never delete a lock file that may be in use.
- ``try_lock(path, **info)``: take a lock without waiting, for "one scheduler per home". The
  holder's pid, host and start time (plus ``info``) are written into the lock file so that a
  refused process can say who holds it: ``read_holder(path)``.
- ``pid_alive(pid)``: whether a process exists and is not a zombie.

POSIX only (Linux, macOS): ``fcntl`` does not exist on Windows.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil

__all__ = ["FileLock", "HolderLock", "pid_alive", "read_holder", "try_lock"]

_POLL_S = 0.02


class FileLock:
    """An exclusive inter-process lock on ``path`` (created if missing, never deleted).

    Example::

        with FileLock(root / ".registry.lock"):
            ...  # read-modify-write registry.json
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take the lock.

        Args:
            blocking: wait for the lock; with False, try once.
            timeout: with ``blocking``, give up after this many seconds (None waits forever).

        Returns:
            True when the lock is held, False when it was not available in time.

        Raises:
            RuntimeError: this object already holds the lock (it is not reentrant).
        """
        if self._fd is not None:
            raise RuntimeError(f"{self.path}: lock already held by this FileLock (not reentrant)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            got = self._lock_fd(fd, blocking, timeout)
        except BaseException:
            os.close(fd)
            raise
        if not got:
            os.close(fd)
            return False
        self._fd = fd
        return True

    @staticmethod
    def _lock_fd(fd: int, blocking: bool, timeout: float | None) -> bool:
        if blocking and timeout is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return True
        deadline = time.monotonic() + (timeout or 0.0)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if not blocking or time.monotonic() >= deadline:
                    return False
            # flock has no timeout of its own, so a timed wait polls.
            time.sleep(_POLL_S)

    def release(self) -> None:
        """Release the lock (a no-op when not held)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def fileno(self) -> int:
        """The descriptor holding the lock (to write holder info through it)."""
        if self._fd is None:
            raise RuntimeError(f"{self.path}: lock not held")
        return self._fd

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __del__(self) -> None:
        # A lock object dropped while held must not keep its descriptor open.
        with contextlib.suppress(Exception):
            self.release()


class HolderLock(FileLock):
    """A ``FileLock`` that records who holds it in the lock file (see ``try_lock``)."""

    def write_holder(self, info: dict[str, Any]) -> None:
        """Replace the lock file's content with ``info`` as JSON."""
        fd = self.fileno()
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)

    def release(self) -> None:
        """Clear the holder info, then release the lock."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
        super().release()


def try_lock(path: str | os.PathLike[str], **info: Any) -> HolderLock | None:
    """Take the lock at ``path`` without waiting and record the holder in it.

    The lock file then holds ``{"pid", "host", "since", **info}`` as JSON until released.

    Returns:
        The held lock (release it, or use it as a context manager), or None if another
        process (or another lock object in this one) holds it; ``read_holder(path)`` then says
        who.
    """
    lock = HolderLock(path)
    if not lock.acquire(blocking=False):
        return None
    lock.write_holder(
        {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(), **info}
    )
    return lock


def read_holder(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Return the holder info a ``try_lock`` holder wrote, or None if none can be read."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = json.loads(text) if text.strip() else None
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def pid_alive(pid: int | None) -> bool:
    """Whether process ``pid`` exists and is not a zombie (an exited, unreaped child)."""
    if pid is None or pid <= 0:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True  # it exists; it just isn't ours
