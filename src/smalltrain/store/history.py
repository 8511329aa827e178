"""Job history in the database: attempts, events and metrics (``HistoryStore``).

``JobStore.history`` is one, sharing the job store's ``Database``; these methods take a job's
full id (they are hot paths).

- attempts: one row per run of a job's process; a resume makes a new attempt.
- events: each row holds an ``Event.to_dict()`` (or a ``status_change`` dict); followers in
  other processes poll ``events_after`` with the last id they saw.
- metrics: rows ``(scope "step"|"epoch", epoch, global_step, key, value)`` written in batches,
  one transaction per batch; read back as curves with ``metric_series``.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from smalltrain.store.sqlite import Database

__all__ = ["Attempt", "HistoryStore", "MetricRow", "end_attempt"]

#: (scope "step"|"epoch", epoch, global step, key, value)
MetricRow = tuple[str, int, int, str, float]


@dataclass(frozen=True)
class Attempt:
    """One run of a job's process; a resume makes a new attempt. Times are epoch seconds."""

    job_id: str
    n: int
    pid: int | None
    host: str | None
    resume_from: str | None
    started_at: float
    finished_at: float | None
    outcome: str | None  # "completed", "cancelled", "failed", "interrupted"
    exit_code: int | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def end_attempt(
    con: sqlite3.Connection,
    job_id: str,
    n: int,
    outcome: str,
    exit_code: int | None,
    error: str | None,
) -> None:
    """Close attempt ``n`` of a job inside the caller's transaction."""
    con.execute(
        "UPDATE attempts SET finished_at = ?, outcome = ?, exit_code = ?, error = ? "
        "WHERE job_id = ? AND n = ?",
        (time.time(), outcome, exit_code, error, job_id, n),
    )


class HistoryStore:
    """Attempts, events and metrics of jobs.

    Args:
        db: the database (``JobStore.db``: the same file and connections as the jobs).
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- attempts ----------------------------------------------------------------------------

    def start_attempt(self, job_id: str, pid: int | None, resume_from: str | None = None) -> int:
        """Record a new attempt (process ``pid``) of a job; return its number (1, 2, ...)."""
        resume = None if resume_from is None else os.fspath(resume_from)
        with self.db.transaction() as con:
            last = con.execute("SELECT MAX(n) FROM attempts WHERE job_id = ?", (job_id,))
            n = int(last.fetchone()[0] or 0) + 1
            con.execute(
                "INSERT INTO attempts (job_id, n, pid, host, resume_from, started_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (job_id, n, pid, socket.gethostname(), resume, time.time()),
            )
            con.execute(
                "UPDATE jobs SET attempts = ?, resume_from = ?, updated_at = ? WHERE id = ?",
                (n, resume, time.time(), job_id),
            )
        return n

    def finish_attempt(
        self,
        job_id: str,
        n: int,
        outcome: str,
        exit_code: int | None = None,
        error: str | None = None,
    ) -> None:
        """Close attempt ``n`` with its outcome ("completed", "cancelled", "failed", ...)."""
        with self.db.transaction() as con:
            end_attempt(con, job_id, n, outcome, exit_code, error)

    def list_attempts(self, job_id: str) -> list[Attempt]:
        """A job's attempts, oldest first."""
        rows = self.db.connection().execute(
            "SELECT * FROM attempts WHERE job_id = ? ORDER BY n", (job_id,)
        )
        return [Attempt(**dict(r)) for r in rows.fetchall()]

    # -- events ------------------------------------------------------------------------------

    def append_events(self, job_id: str, events: Sequence[Mapping[str, Any]]) -> None:
        """Store events (each an ``Event.to_dict()``) in one transaction."""
        now = time.time()
        rows = [
            (job_id, str(e.get("type", "event")), float(e.get("time", now)), json.dumps(e))
            for e in events
        ]
        with self.db.transaction() as con:
            con.executemany(
                "INSERT INTO events (job_id, type, time, data) VALUES (?, ?, ?, ?)", rows
            )

    def events_after(
        self, job_id: str, after_id: int = 0, limit: int = 1000
    ) -> list[tuple[int, dict[str, Any]]]:
        """A job's events with id > ``after_id``, oldest first, as ``(id, dict)``.

        Followers in other processes poll this, passing the last id they saw.
        """
        rows = self.db.connection().execute(
            "SELECT id, data FROM events WHERE job_id = ? AND id > ? ORDER BY id LIMIT ?",
            (job_id, after_id, limit),
        )
        return [(int(r["id"]), json.loads(r["data"])) for r in rows.fetchall()]

    def events_of_type(
        self,
        job_id: str,
        types: Sequence[str],
        after_id: int = 0,
        limit: int = 1000,
        newest: bool = False,
    ) -> list[tuple[int, dict[str, Any]]]:
        """A job's events of the given types as ``(id, dict)``, oldest first.

        ``newest=True`` takes the newest ``limit`` of them (still returned oldest first), e.g.
        the last 50 log lines of a long job without reading its thousands of step events.
        """
        marks = ",".join("?" for _ in types)
        order = "DESC" if newest else "ASC"
        rows = (
            self.db.connection()
            .execute(
                f"SELECT id, data FROM events WHERE job_id = ? AND id > ? AND type IN ({marks}) "
                f"ORDER BY id {order} LIMIT ?",
                (job_id, after_id, *types, limit),
            )
            .fetchall()
        )
        out = [(int(r["id"]), json.loads(r["data"])) for r in rows]
        return out[::-1] if newest else out

    def last_event_id(self, job_id: str) -> int:
        """The id of a job's newest event (0 if none)."""
        row = (
            self.db.connection()
            .execute("SELECT MAX(id) FROM events WHERE job_id = ?", (job_id,))
            .fetchone()
        )
        return int(row[0] or 0)

    # -- metrics -----------------------------------------------------------------------------

    def append_metrics(self, job_id: str, rows: Sequence[MetricRow]) -> None:
        """Store metric rows ``(scope, epoch, global_step, key, value)`` in one transaction."""
        data = [(job_id, s, int(e), int(st), k, float(v)) for s, e, st, k, v in rows]
        with self.db.transaction() as con:
            con.executemany(
                "INSERT INTO metrics (job_id, scope, epoch, step, key, value) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                data,
            )

    def metric_series(self, job_id: str, key: str, scope: str = "step") -> list[tuple[int, float]]:
        """One metric's curve: ``(global_step, value)`` for "step", ``(epoch, value)`` for
        "epoch", in order. NaN values come back as NaN."""
        x = "epoch" if scope == "epoch" else "step"
        rows = self.db.connection().execute(
            f"SELECT {x}, value FROM metrics WHERE job_id = ? AND key = ? AND scope = ? "
            f"ORDER BY {x}, rowid",
            (job_id, key, scope),
        )
        return [(int(a), math.nan if v is None else float(v)) for a, v in rows.fetchall()]

    def metric_series_sampled(
        self, job_id: str, key: str, scope: str = "step", max_points: int = 400
    ) -> list[tuple[int, float]]:
        """One metric's curve with at most about ``max_points`` points, for charts.

        A longer curve is cut into equal runs of x (global step or epoch); each run gives one
        point: its first x and the mean of its values (NaN rows are left out of the mean, a run
        of only NaN gives NaN). A short curve comes back whole, as ``metric_series`` gives it.
        """
        x = "epoch" if scope == "epoch" else "step"
        where = "WHERE job_id = ? AND key = ? AND scope = ?"
        low, high, count = (
            self.db.connection()
            .execute(
                f"SELECT MIN({x}), MAX({x}), COUNT(*) FROM metrics {where}", (job_id, key, scope)
            )
            .fetchone()
        )
        if not count or count <= max_points:
            return self.metric_series(job_id, key, scope)
        width = max(1, -(-(int(high) - int(low) + 1) // max(1, max_points)))
        rows = self.db.connection().execute(
            f"SELECT MIN({x}), AVG(value) FROM metrics {where} "
            f"GROUP BY ({x} - ?) / ? ORDER BY MIN({x})",
            (job_id, key, scope, int(low), width),
        )
        return [(int(a), math.nan if v is None else float(v)) for a, v in rows.fetchall()]

    def metric_keys(self, job_id: str, scope: str | None = None) -> list[str]:
        """The metric keys recorded for a job (optionally of one scope), sorted."""
        sql = "SELECT DISTINCT key FROM metrics WHERE job_id = ?"
        args: list[Any] = [job_id]
        if scope is not None:
            sql, args = sql + " AND scope = ?", [*args, scope]
        return sorted(r[0] for r in self.db.connection().execute(sql, args).fetchall())

    def metric_epochs(self, job_id: str) -> set[int]:
        """The epochs that have epoch-scope metric rows for a job."""
        rows = self.db.connection().execute(
            "SELECT DISTINCT epoch FROM metrics WHERE job_id = ? AND scope = 'epoch'", (job_id,)
        )
        return {int(r[0]) for r in rows.fetchall()}

    def truncate_metrics(self, job_id: str, global_step: int, epoch: int) -> None:
        """Drop step rows after ``global_step`` and epoch rows from ``epoch`` on.

        Call it when a job resumes from a checkpoint, so its curves hold no duplicates (as
        ``MetricsHistory.truncate`` does in memory).
        """
        with self.db.transaction() as con:
            con.execute(
                "DELETE FROM metrics WHERE job_id = ? AND "
                "((scope = 'step' AND step > ?) OR (scope = 'epoch' AND epoch >= ?))",
                (job_id, global_step, epoch),
            )
