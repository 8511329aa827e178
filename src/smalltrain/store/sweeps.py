"""Sweeps in the database: the ``sweeps`` table and the queries over its trials.

A sweep's trials are ordinary jobs (``jobs.sweep_id``); this module adds the sweep's own row
and what the sweep logic reads: its trials, and the validation metric each trial reported at
each epoch, in the order the reports arrived (the order successive halving needs).

``SweepStore`` works on a ``JobStore``'s database (``JobStore.db``: its connections and
transactions), so one database file holds everything and a sweep and its trials are inserted
in one transaction.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from smalltrain.engine.jobs import TrainingJob
from smalltrain.errors import JobNotFound
from smalltrain.store.db import MIN_PREFIX, JobStore, short_prefix_note

__all__ = ["SWEEP_STATUSES", "EpochReport", "SweepRecord", "SweepStore"]

#: RUNNING → FINALIZING (one process registers the best trial) → COMPLETED or FAILED.
SWEEP_STATUSES = ("RUNNING", "FINALIZING", "COMPLETED", "FAILED")


@dataclass
class SweepRecord:
    """One sweep: what it varies (``spec``), what it optimises, and how it ended."""

    id: str
    task: str
    metric: str
    mode: str  # "min" or "max"
    dataset: str | None = None
    spec: dict[str, Any] = field(default_factory=dict)
    status: str = "RUNNING"
    status_reason: str | None = None
    best_job_id: str | None = None
    best_model: str | None = None
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return asdict(self)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> SweepRecord:
        data = dict(row)
        data["spec"] = json.loads(data["spec"] or "{}")
        return cls(**data)


@dataclass(frozen=True)
class EpochReport:
    """A trial's validation metric after an epoch, with the id of the event that carried it
    (ids grow in arrival order)."""

    event_id: int
    job_id: str
    epoch: int  # 0-based, as in EpochMetrics
    value: float


class SweepStore:
    """The sweeps of one home's database (see the module docstring).

    Args:
        jobs: the home's job store; its connections and transactions are used.
    """

    def __init__(self, jobs: JobStore) -> None:
        self.jobs = jobs

    def insert(self, sweep: SweepRecord, trials: Sequence[TrainingJob]) -> None:
        """Store a sweep and its trial jobs (QUEUED) in one transaction."""
        with self.jobs.db.transaction() as con:
            con.execute(
                "INSERT INTO sweeps (id, dataset, task, metric, mode, spec, status, "
                "status_reason, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (sweep.id, sweep.dataset, sweep.task, sweep.metric, sweep.mode,
                 json.dumps(sweep.spec), sweep.status, sweep.status_reason, sweep.created_at),
            )  # fmt: skip
            for job in trials:
                job.sweep_id = sweep.id
                self.jobs._insert(con, job)

    def get(self, sweep_id: str) -> SweepRecord:
        """The sweep with this id (or a unique prefix of 4+ characters).

        Raises:
            JobNotFound: no sweep, or an ambiguous prefix.
        """
        con = self.jobs.db.connection()
        row = con.execute("SELECT * FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
        if row is None and len(sweep_id) >= MIN_PREFIX:
            prefix = sweep_id.strip().lower()
            rows = con.execute(
                "SELECT * FROM sweeps WHERE id >= ? AND id < ? ORDER BY id LIMIT 6",
                (prefix, prefix + "~"),
            ).fetchall()
            if len(rows) > 1:
                ids = ", ".join(r["id"] for r in rows[:5])
                raise JobNotFound(f"Sweep id prefix {sweep_id!r} matches several ({ids})")
            row = rows[0] if rows else None
        if row is None:
            raise JobNotFound(
                f"No sweep {sweep_id!r}{short_prefix_note(sweep_id)}. List sweeps with: "
                "smalltrain sweep list"
            )
        return SweepRecord.from_row(row)

    def newest(self, limit: int | None = 50) -> list[SweepRecord]:
        """Sweeps, newest first."""
        rows = self.jobs.db.connection().execute(
            "SELECT * FROM sweeps ORDER BY created_at DESC LIMIT ?",
            (-1 if limit is None else limit,),
        )
        return [SweepRecord.from_row(r) for r in rows.fetchall()]

    def trials(self, sweep_id: str) -> list[TrainingJob]:
        """The sweep's trial jobs in the order they were planned."""
        rows = self.jobs.db.connection().execute(
            "SELECT * FROM jobs WHERE sweep_id = ? ORDER BY seq", (sweep_id,)
        )
        return [TrainingJob.from_row(r) for r in rows.fetchall()]

    def epoch_reports(self, sweep_id: str, metric: str) -> list[EpochReport]:
        """Every trial's ``metric`` per epoch, oldest report first (NaN/missing skipped).

        Read from the stored epoch events, whose ids give the order the reports arrived in.
        """
        rows = self.jobs.db.connection().execute(
            "SELECT e.id, e.job_id, e.data FROM events e JOIN jobs j ON j.id = e.job_id "
            "WHERE j.sweep_id = ? AND e.type = 'epoch' ORDER BY e.id",
            (sweep_id,),
        )
        out = []
        for event_id, job_id, data in rows.fetchall():
            event = json.loads(data)
            value = _number(dict(event.get("metrics") or {}).get(metric))
            if value is not None:
                out.append(EpochReport(int(event_id), job_id, int(event.get("epoch", 0)), value))
        return out

    def claim_finalize(self, sweep_id: str) -> bool:
        """Move a RUNNING sweep to FINALIZING; True for the one caller that did it."""
        with self.jobs.db.transaction() as con:
            cur = con.execute(
                "UPDATE sweeps SET status = 'FINALIZING' WHERE id = ? AND status = 'RUNNING'",
                (sweep_id,),
            )
            return cur.rowcount == 1

    def update(self, sweep_id: str, **fields: Any) -> None:
        """Set fields of a sweep's row (``status``, ``status_reason``, ``best_job_id``, ...)."""
        allowed = {"status", "status_reason", "best_job_id", "best_model", "finished_at"}
        unknown = sorted(set(fields) - allowed)
        if unknown:
            raise TypeError(f"unknown sweep field(s) {unknown}; known: {sorted(allowed)}")
        if fields.get("status") not in (None, *SWEEP_STATUSES):
            raise ValueError(f"sweep status {fields['status']!r}: one of {SWEEP_STATUSES}")
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self.jobs.db.transaction() as con:
            con.execute(f"UPDATE sweeps SET {sets} WHERE id = ?", [*fields.values(), sweep_id])

    def running(self) -> list[SweepRecord]:
        """Sweeps not yet finished (RUNNING or FINALIZING)."""
        rows = self.jobs.db.connection().execute(
            "SELECT * FROM sweeps WHERE status IN ('RUNNING', 'FINALIZING') ORDER BY created_at"
        )
        return [SweepRecord.from_row(r) for r in rows.fetchall()]


def _number(value: Any) -> float | None:
    """A finite float, or None (missing, text, NaN/inf)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None
