"""``Database``: one SQLite file, a connection per thread, and write transactions.

``JobStore`` holds one (``JobStore.db``) and shares it with its ``HistoryStore``; ``SweepStore``
uses the same one, so a single file holds everything. Opening migrates the schema
(``smalltrain.store.schema``). Connections use WAL mode, ``busy_timeout`` 10 s,
``foreign_keys=ON`` and ``synchronous=NORMAL``; each thread gets its own connection on first use
(``check_same_thread`` is off only so that ``close()`` can close them all), and a forked child
never touches its parent's connections.

SQLite's own errors never escape as tracebacks: "database or disk is full" becomes
``DiskFull`` (naming the database file and the space left), any other operational error (a
database locked for longer than ``busy_timeout``, an I/O error) a ``StoreError`` naming the
file. The write-ahead log is kept small (``journal_size_limit``, checkpoints every 256 pages)
and truncated after a full disk, so a nearly full disk still has room for a job's last status.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from smalltrain.engine.fsutil import disk_full_error, is_disk_full
from smalltrain.errors import STORE_REFUSED, StoreError
from smalltrain.store.schema import migrate

__all__ = ["Database"]

_D = TypeVar("_D", bound="Database")
_WAL_LIMIT_BYTES = 1 << 20
_WAL_AUTOCHECKPOINT_PAGES = 256


def store_error(path: Path, exc: sqlite3.Error) -> Exception:
    """The smalltrain error for a SQLite error on the database ``path``."""
    if is_disk_full(exc):
        return disk_full_error(path, 8192, exc, at_least=True, what="job database")
    text = str(exc)
    if "locked" in text or "busy" in text:
        return StoreError(
            f"{path}: the database stayed locked by another smalltrain process for more than "
            "10 s; try again, or stop the other process (smalltrain resources shows the worker)"
        )
    return StoreError(f"{path}: the job database refused the operation ({text})")


class _Connection(sqlite3.Connection):
    """A connection whose SQLite errors name the database file (see ``store_error``)."""

    db_path: Path = Path()

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.OperationalError as exc:
            raise store_error(self.db_path, exc) from exc

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        try:
            return super().executemany(sql, parameters)
        except sqlite3.OperationalError as exc:
            raise store_error(self.db_path, exc) from exc


class Database:
    """A SQLite database file shared by threads (one connection each) and processes.

    Args:
        path: the database file (created with its folder if missing; migrated on open).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._conns: dict[int, sqlite3.Connection] = {}
        self._pid = os.getpid()
        self._closed = False
        self.schema_version = migrate(self.connection())

    def _connect(self) -> sqlite3.Connection:
        try:
            con = sqlite3.connect(
                self.path,
                timeout=10.0,
                isolation_level=None,
                check_same_thread=False,
                factory=_Connection,
            )
        except sqlite3.OperationalError as exc:
            raise store_error(self.path, exc) from exc
        con.db_path = self.path
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA busy_timeout = 10000")
        con.execute("PRAGMA foreign_keys = ON")
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = NORMAL")
        con.execute(f"PRAGMA journal_size_limit = {_WAL_LIMIT_BYTES}")
        con.execute(f"PRAGMA wal_autocheckpoint = {_WAL_AUTOCHECKPOINT_PAGES}")
        return con

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        if self._pid != os.getpid():  # forked: never touch the parent's connections
            self._pid, self._conns, self._local = os.getpid(), {}, threading.local()
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is not None:
            return con
        if self._closed:
            raise StoreError(f"{self.path}: this JobStore is closed")
        con = self._connect()
        with self._lock:
            alive = {t.ident for t in threading.enumerate()}
            ident = threading.get_ident()
            for other in [i for i in self._conns if i not in alive or i == ident]:
                self._conns.pop(other).close()  # connections of threads that have ended
            self._conns[ident] = con
        self._local.con = con
        return con

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``): commit on success, roll back on error.

        Raises:
            DiskFull: no room for the transaction; it was rolled back and the write-ahead log
                truncated, so a smaller write afterwards may still fit.
            StoreError: any other SQLite failure, naming the file.
        """
        con = self.connection()
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
            con.execute("COMMIT")
        except BaseException as exc:
            if con.in_transaction:  # a failed COMMIT leaves the transaction open
                with contextlib.suppress(sqlite3.Error, *STORE_REFUSED):
                    con.execute("ROLLBACK")
            if is_disk_full(exc):
                self._shrink_wal(con)
            raise

    @staticmethod
    def _shrink_wal(con: sqlite3.Connection) -> None:
        """Best effort after a full disk: fold the write-ahead log into the database and
        truncate it, which gives back most of its space."""
        with contextlib.suppress(sqlite3.Error, *STORE_REFUSED):
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        """Close every connection this store opened (in any thread)."""
        with self._lock:
            self._closed = True
            conns, self._conns = list(self._conns.values()), {}
        for con in conns:
            con.close()
        self._local = threading.local()

    def __enter__(self: _D) -> _D:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def integrity_check(self) -> str:
        """Run ``PRAGMA integrity_check``; "ok" when the file is sound."""
        rows = self.connection().execute("PRAGMA integrity_check").fetchall()
        return "\n".join(str(r[0]) for r in rows)
