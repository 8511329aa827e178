"""``Database``: one SQLite file, a connection per thread, and write transactions.

The base of ``JobStore``. Opening migrates the schema (``smalltrain.store.schema``).
Connections use WAL mode, ``busy_timeout`` 10 s, ``foreign_keys=ON`` and
``synchronous=NORMAL``; each thread gets its own connection on first use (``check_same_thread``
is off only so that ``close()`` can close them all), and a forked child never touches its
parent's connections.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from smalltrain.errors import StoreError
from smalltrain.store.schema import migrate

__all__ = ["Database"]

_D = TypeVar("_D", bound="Database")


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
        self.schema_version = migrate(self._conn())

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(
            self.path, timeout=10.0, isolation_level=None, check_same_thread=False
        )
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA busy_timeout = 10000")
        con.execute("PRAGMA foreign_keys = ON")
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = NORMAL")
        return con

    def _conn(self) -> sqlite3.Connection:
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
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``): commit on success, roll back on error."""
        con = self._conn()
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

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
        rows = self._conn().execute("PRAGMA integrity_check").fetchall()
        return "\n".join(str(r[0]) for r in rows)
