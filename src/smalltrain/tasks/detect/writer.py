"""Checkpoint files written off the training thread: one writer thread, atomic, latest wins.

Ultralytics serialises a checkpoint to bytes on the training thread (``save_model``: a copy of
the EMA model in fp16, the optimizer state, the metrics) and then writes last.pt and best.pt. On
small data that took about a third of each epoch (0.54 s of 1.52 s on an H100). The trainer
(:mod:`~smalltrain.tasks.detect.trainer`) takes only a cheap snapshot on the training thread
and hands :class:`CheckpointWriter` a function that serialises it; the writer builds the bytes
once per snapshot (last.pt and best.pt share them) and writes them:

- one thread writes, each file atomically with the engine's ``atomic_write``: a temporary
  file beside the target, flushed and fsynced, renamed over it, the folder fsynced. A crash at
  any point leaves the previous file whole, and a full disk is the engine's ``DiskFull``;
- per target path, the latest snapshot wins: one still waiting when a newer one arrives is
  dropped (never written). Memory stays bounded: :meth:`submit` waits while another snapshot
  is still queued (one kept only for best.pt), so at most one snapshot waits while one is
  being written;
- :meth:`flush` waits until everything submitted is on disk (before anything reads the files:
  a cancel that must leave a resumable last.pt, NaN recovery, the final evaluation);
  :meth:`close` flushes and stops the thread. A failed write is raised on the training thread
  at the next :meth:`submit`, :meth:`flush` or :meth:`close`;
- :meth:`when_written` runs a callback once a snapshot is really on disk (the task's
  ``CheckpointSaved`` events mean "landed", as everywhere else in smalltrain).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from smalltrain.engine.fsutil import atomic_write

__all__ = ["AsyncPath", "CheckpointWriter"]


class _Snapshot:
    """The bytes of one file version, or the function that builds them (on the writer thread)."""

    __slots__ = ("_build", "_data")

    def __init__(self, data: bytes | Callable[[], bytes]) -> None:
        self._build: Callable[[], bytes] | None = None
        self._data: bytes | None = None
        if isinstance(data, bytes | bytearray | memoryview):
            self._data = bytes(data)
        else:
            self._build = data

    def data(self) -> bytes:
        """The bytes, built on first use (then kept for the snapshot's other paths)."""
        if self._data is None and self._build is not None:
            self._data, self._build = self._build(), None
        return self._data or b""


class CheckpointWriter:
    """A single background thread that writes whole files atomically (see the module docs)."""

    def __init__(self, name: str = "checkpoint-writer") -> None:
        self._cond = threading.Condition()
        self._pending: dict[Path, tuple[int, _Snapshot]] = {}
        self._submitted: dict[Path, int] = {}  # per path: snapshots submitted so far
        self._landed: dict[Path, int] = {}  # per path: the newest snapshot on disk
        self._waiters: dict[Path, list[tuple[int, Callable[[], None]]]] = {}
        self._busy = False
        self._closed = False
        self._error: BaseException | None = None
        self.written = 0  # files renamed into place
        self.dropped = 0  # snapshots superseded before they were written
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, path: Path | Iterable[Path], data: bytes | Callable[[], bytes]) -> None:
        """Queue ``data`` for ``path`` (one path or several sharing the snapshot); an older
        snapshot of the same path still queued is dropped.

        ``data`` is the bytes, or a function that builds them, called once on the writer thread
        (an error it raises is reported like a failed write). Waits while another snapshot is
        still queued for other paths (memory: one queued, one being written).

        Raises:
            The error of an earlier failed write (the file system's OSError), or RuntimeError
            after :meth:`close`.
        """
        paths = [Path(path)] if isinstance(path, str | os.PathLike) else [Path(p) for p in path]
        snapshot = _Snapshot(data)
        with self._cond:
            self._raise_error()
            if self._closed:
                raise RuntimeError("the checkpoint writer is closed")
            for p in paths:
                if self._pending.pop(p, None) is not None:
                    self.dropped += 1
            self._cond.wait_for(lambda: self._error is not None or not self._pending)
            self._raise_error()
            for p in paths:
                self._submitted[p] = self._submitted.get(p, 0) + 1
                self._pending[p] = (self._submitted[p], snapshot)
            self._cond.notify_all()

    def when_written(self, path: Path, callback: Callable[[], None]) -> None:
        """Call ``callback`` (on the writer thread, or now) once the latest snapshot submitted
        for ``path`` (or a newer one) is on disk. Never called for a write that failed."""
        path = Path(path)
        with self._cond:
            gen = self._submitted.get(path, 0)
            if self._landed.get(path, 0) < gen:
                self._waiters.setdefault(path, []).append((gen, callback))
                return
        callback()

    def flush(self, timeout: float | None = None) -> None:
        """Block until every submitted snapshot is on disk (or was dropped for a newer one).

        Raises:
            The error of a failed write; TimeoutError when ``timeout`` passes first.
        """
        with self._cond:
            done = self._cond.wait_for(
                lambda: self._error is not None or (not self._pending and not self._busy),
                timeout,
            )
            self._raise_error()
            if not done:
                raise TimeoutError(f"checkpoint writes still pending after {timeout} s")

    def close(self) -> None:
        """Flush, then stop the thread. Safe to call twice."""
        try:
            self.flush()
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()
            self._thread.join()

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._closed)
                if not self._pending:
                    return  # closed and drained
                path = next(iter(self._pending))
                gen, snapshot = self._pending.pop(path)
                self._busy = True
                self._cond.notify_all()  # a submit waiting for the queue to empty may go on
            try:
                self._write(path, snapshot.data())
                self._landed_now(path, gen)
            except BaseException as exc:  # reported on the training thread
                with self._cond:
                    self._error = exc
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _landed_now(self, path: Path, gen: int) -> None:
        with self._cond:
            self._landed[path] = gen
            waiting = self._waiters.pop(path, [])
            ready = [fn for g, fn in waiting if g <= gen]
            if len(ready) < len(waiting):
                self._waiters[path] = [(g, fn) for g, fn in waiting if g > gen]
        for callback in ready:
            callback()

    def _write(self, path: Path, data: bytes) -> None:
        atomic_write(
            path, lambda f: f.write(data), size=len(data), what="checkpoint",
            before_replace=self._before_replace,
        )  # fmt: skip
        self.written += 1

    def _before_replace(self, tmp: Path, target: Path) -> None:
        """Called with the temporary file complete and fsynced, just before the rename.

        A no-op; tests override it to hold a real process at exactly this point and kill it.
        """


class AsyncPath(type(Path())):  # type: ignore[misc]
    """A Path whose ``write_bytes`` hands the bytes to a :class:`CheckpointWriter`.

    Ultralytics' ``save_model`` ends with ``self.last.write_bytes(serialised)`` (and the same
    for best.pt); giving the trainer these paths moves exactly those writes off its thread.
    """

    writer: CheckpointWriter

    def write_bytes(self, data: bytes) -> int:
        """Queue the write; returns at once."""
        data = bytes(data)
        self.writer.submit(Path(str(self)), data)
        return len(data)


def async_path(path: Path, writer: CheckpointWriter) -> AsyncPath:
    """``path`` as an :class:`AsyncPath` bound to ``writer``."""
    out = AsyncPath(str(path))
    out.writer = writer
    return out
