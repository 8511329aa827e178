"""``JobStore``: the SQLite database at ``$SMALLTRAIN_HOME/smalltrain.db``.

The database is the hub between processes: any process may enqueue a job or request a cancel;
the one scheduler claims queued jobs, records attempts, events and metrics; clients follow
events with ``history.events_after``. Schema and migrations: ``smalltrain.store.schema``.

A ``JobStore`` is made of parts, each in its own module: ``db`` (``store.sqlite.Database``: the
file, a connection per thread, write transactions), the jobs and datasets (here), and
``history`` (``store.history.HistoryStore``: attempts, events, metrics) on the same ``db``.

Safety:
- WAL mode, ``busy_timeout`` 10 s, ``foreign_keys=ON``, ``synchronous=NORMAL``.
- One connection per thread (created on first use), so one ``JobStore`` may be shared by
  threads; every process opens its own. ``close()`` closes them all.
- Every multi-row write is one transaction; state changes run inside ``BEGIN IMMEDIATE`` (read,
  validate with ``check_transition``, write, and append a ``status_change`` event), so a crash
  or a concurrent writer never leaves a half-written job.

Ids: ``get_job``, ``set_status``, ``update_job``, ``request_cancel`` and ``delete_job`` accept a
unique id prefix of 4+ characters; the attempt, event and metric methods of ``history`` (hot
paths) need the full id.

A ``status_change`` event's dict is ``{"type": "status_change", "time", "from", "to",
"reason"}``; it is not an ``engine.events`` type, so followers must accept unknown types.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from smalltrain.engine.context import CancelMode
from smalltrain.engine.jobs import (
    ACTIVE,
    JOB_FIELDS,
    JSON_FIELDS,
    TERMINAL,
    JobStatus,
    TrainingJob,
    check_transition,
)
from smalltrain.engine.locks import pid_alive
from smalltrain.errors import InvalidTransition, JobNotFound, ModelExists
from smalltrain.store.history import Attempt, HistoryStore, MetricRow, end_attempt
from smalltrain.store.records import DatasetRecord
from smalltrain.store.sqlite import Database

__all__ = ["MIN_PREFIX", "Attempt", "JobStore", "MetricRow", "short_prefix_note"]

_UPDATABLE = frozenset(JOB_FIELDS) - {"id", "status"}
_ACTIVE_SQL = "(" + ",".join(f"'{s.value}'" for s in sorted(ACTIVE)) + ")"
MIN_PREFIX = 4


def short_prefix_note(ref: str) -> str:
    """What a not-found message adds for an id too short to be read as a prefix ("" else)."""
    if 0 < len(ref) < MIN_PREFIX:
        return f" (a prefix needs {MIN_PREFIX} characters or more)"
    return ""


#: Jobs that will register a model soon: their model name is reserved.
_NAME_HOLDERS = frozenset({JobStatus.QUEUED, *ACTIVE})


def _encode(name: str, value: Any) -> Any:
    if name in JSON_FIELDS:
        return json.dumps(dict(value or {}))
    if isinstance(value, JobStatus):
        return value.value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


class JobStore:
    """Jobs, attempts, events, metrics and datasets in one SQLite file (``smalltrain.db``).

    Jobs and datasets are methods here; attempts, events and metrics are on ``history``; the
    file and its connections are ``db``.

    Args:
        path: the database file (created with its folder if missing; migrated on open).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.db = Database(path)
        self.history = HistoryStore(self.db)

    @property
    def path(self) -> Path:
        """The database file."""
        return self.db.path

    @property
    def schema_version(self) -> int:
        """The schema version the file was migrated to on open."""
        return self.db.schema_version

    def close(self) -> None:
        """Close every connection this store opened (in any thread)."""
        self.db.close()

    def __enter__(self) -> JobStore:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- datasets ----------------------------------------------------------------------------

    def upsert_dataset(self, rec: DatasetRecord) -> None:
        """Insert or replace the dataset ``rec.name``."""
        with self.db.transaction() as con:
            con.execute(
                "INSERT OR REPLACE INTO datasets (name, path, kind, summary, snapshot, "
                "fingerprint, quick_fingerprint, created_at) VALUES (?,?,?,?,?,?,?,?)",
                (rec.name, rec.path, rec.kind, json.dumps(rec.summary), rec.snapshot,
                 rec.fingerprint, rec.quick_fingerprint, rec.created_at),
            )  # fmt: skip

    @staticmethod
    def _dataset(row: sqlite3.Row) -> DatasetRecord:
        data = dict(row)
        data["summary"] = json.loads(data["summary"])
        return DatasetRecord(**data)

    def get_dataset(self, name: str) -> DatasetRecord | None:
        """The dataset ``name``, or None."""
        row = (
            self.db.connection()
            .execute("SELECT * FROM datasets WHERE name = ?", (name,))
            .fetchone()
        )
        return None if row is None else self._dataset(row)

    def list_datasets(self) -> list[DatasetRecord]:
        """Every dataset, by name."""
        rows = self.db.connection().execute("SELECT * FROM datasets ORDER BY name").fetchall()
        return [self._dataset(r) for r in rows]

    def delete_dataset(self, name: str) -> bool:
        """Forget dataset ``name`` (its jobs keep their history); True if it existed."""
        with self.db.transaction() as con:
            return con.execute("DELETE FROM datasets WHERE name = ?", (name,)).rowcount > 0

    # -- jobs --------------------------------------------------------------------------------

    def insert_job(
        self, job: TrainingJob, *, check_name: Callable[[], None] | None = None
    ) -> TrainingJob:
        """Store a new job (normally QUEUED) and its first ``status_change`` event.

        Args:
            check_name: reserve the job's model name: the job is refused when a queued or
                running job of the same dataset will register a model of that name, and
                ``check_name()`` (which may look at the model registry) runs inside the same
                write transaction, so two jobs queued at the same moment cannot both pass.

        Raises:
            ModelExists: the name is taken (by another job, or by ``check_name``).
        """
        with self.db.transaction() as con:
            if check_name is not None:
                self._refuse_reserved_name(con, job)
                check_name()
            self._insert(con, job)
        return job

    def _insert(self, con: sqlite3.Connection, job: TrainingJob) -> None:
        """INSERT ``job`` and its first ``status_change`` event inside the caller's transaction."""
        cols = ", ".join(JOB_FIELDS)
        marks = ", ".join("?" for _ in JOB_FIELDS)
        job.updated_at = time.time()
        values = [_encode(n, getattr(job, n)) for n in JOB_FIELDS]
        con.execute(f"INSERT INTO jobs ({cols}) VALUES ({marks})", values)
        self._status_event(con, job.id, None, job.status, job.status_reason)

    @staticmethod
    def _refuse_reserved_name(con: sqlite3.Connection, job: TrainingJob) -> None:
        statuses = ",".join(f"'{s.value}'" for s in sorted(_NAME_HOLDERS))
        row = con.execute(
            f"SELECT id, status FROM jobs WHERE model_name = ? AND dataset IS ? AND id != ? "
            f"AND status IN ({statuses}) ORDER BY seq LIMIT 1",
            (job.model_name, job.dataset, job.id),
        ).fetchone()
        if row is not None:
            raise ModelExists(
                f"A model named {job.model_name!r} is already being trained for dataset "
                f"{job.dataset!r} by job {row['id']} ({row['status']}); choose another "
                f"model name (the CLI's --name), or wait for that job with: "
                f"smalltrain jobs wait {row['id']}"
            )

    def _find(self, con: sqlite3.Connection, job_id: str) -> TrainingJob:
        """The job with this id or unique prefix."""
        row = con.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None and len(job_id) >= MIN_PREFIX:
            prefix = job_id.strip().lower()
            rows = con.execute(
                "SELECT * FROM jobs WHERE id >= ? AND id < ? ORDER BY id LIMIT 6",
                (prefix, prefix + "~"),
            ).fetchall()
            if len(rows) > 1:
                ids = ", ".join(r["id"] for r in rows[:5])
                raise JobNotFound(
                    f"Job id prefix {job_id!r} matches several jobs ({ids}); give more characters"
                )
            row = rows[0] if rows else None
        if row is None:
            short = short_prefix_note(job_id)
            raise JobNotFound(f"No job {job_id!r}{short}. List jobs with: smalltrain jobs list")
        return TrainingJob.from_row(row)

    def get_job(self, job_id: str) -> TrainingJob:
        """The job with this id (or a unique prefix of 4+ characters).

        Raises:
            JobNotFound: no job, or an ambiguous prefix.
        """
        return self._find(self.db.connection(), job_id)

    def list_jobs(
        self,
        status: JobStatus | str | Iterable[JobStatus | str] | None = None,
        dataset: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
        task: str | None = None,
    ) -> list[TrainingJob]:
        """Jobs newest first, optionally only some statuses, one dataset and/or one task."""
        where, args = self._filters(status, dataset, task)
        sql = f"SELECT * FROM jobs{where} ORDER BY created_at DESC, seq DESC LIMIT ? OFFSET ?"
        rows = self.db.connection().execute(sql, [*args, -1 if limit is None else limit, offset])
        return [TrainingJob.from_row(r) for r in rows.fetchall()]

    def count_jobs(
        self,
        status: JobStatus | str | Iterable[JobStatus | str] | None = None,
        dataset: str | None = None,
        task: str | None = None,
    ) -> int:
        """How many jobs match (same filters as ``list_jobs``)."""
        where, args = self._filters(status, dataset, task)
        return int(
            self.db.connection().execute(f"SELECT COUNT(*) FROM jobs{where}", args).fetchone()[0]
        )

    @staticmethod
    def _filters(
        status: JobStatus | str | Iterable[JobStatus | str] | None,
        dataset: str | None,
        task: str | None = None,
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if status is not None:
            many = [status] if isinstance(status, str) else list(status)
            values = [JobStatus(s).value for s in many]
            clauses.append(f"status IN ({','.join('?' for _ in values)})")
            args += values
        if dataset is not None:
            clauses.append("dataset = ?")
            args.append(dataset)
        if task is not None:
            clauses.append("task = ?")
            args.append(task)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), args

    def update_job(self, job_id: str, **fields: Any) -> TrainingJob:
        """Set job fields other than ``id`` and ``status`` (use ``set_status``); return the job.

        Raises:
            JobNotFound: no such job.
            TypeError: an unknown field, or ``status``.
        """
        self._check_fields(fields)
        with self.db.transaction() as con:
            job = self._find(con, job_id)
            self._write(con, job, fields)
        return job

    @staticmethod
    def _check_fields(fields: Mapping[str, Any]) -> None:
        if "status" in fields:
            raise TypeError("change a job's status with set_status(), not update_job()")
        unknown = sorted(set(fields) - _UPDATABLE)
        if unknown:
            raise TypeError(f"unknown job field(s) {unknown}; known: {sorted(_UPDATABLE)}")

    @staticmethod
    def _write(con: sqlite3.Connection, job: TrainingJob, fields: Mapping[str, Any]) -> None:
        """UPDATE the given fields (plus updated_at) and apply them to ``job``."""
        fields = {**fields, "updated_at": time.time()}
        sets = ", ".join(f"{k} = ?" for k in fields)
        values = [_encode(k, v) for k, v in fields.items()]
        con.execute(f"UPDATE jobs SET {sets} WHERE id = ?", [*values, job.id])
        for k, v in fields.items():
            setattr(job, k, JobStatus(v) if k == "status" else v)

    @staticmethod
    def _status_event(
        con: sqlite3.Connection,
        job_id: str,
        old: JobStatus | None,
        new: JobStatus,
        reason: str | None,
    ) -> None:
        now = time.time()
        data = {"type": "status_change", "time": now, "from": old and old.value,
                "to": new.value, "reason": reason}  # fmt: skip
        con.execute(
            "INSERT INTO events (job_id, type, time, data) VALUES (?, ?, ?, ?)",
            (job_id, "status_change", now, json.dumps(data)),
        )

    def _set_status(
        self,
        con: sqlite3.Connection,
        job: TrainingJob,
        to: JobStatus | str,
        fields: Mapping[str, Any],
    ) -> TrainingJob:
        old = job.status
        to = check_transition(job.id, old, to)
        now = time.time()
        auto: dict[str, Any] = {"status": to}
        if to is JobStatus.STARTING:
            auto.update(started_at=now, finished_at=None)
        elif to is JobStatus.QUEUED:
            auto.update(queued_at=now, finished_at=None, cancel_requested=None)
        elif to in TERMINAL:
            auto["finished_at"] = now
        if to is JobStatus.COMPLETED:
            auto["progress"] = 1.0
        self._write(con, job, {**auto, **fields})
        self._status_event(con, job.id, old, to, job.status_reason)
        return job

    def set_status(self, job_id: str, to: JobStatus | str, **fields: Any) -> TrainingJob:
        """Move a job to ``to`` (validated by the transition table) and set ``fields``.

        Timestamps follow: STARTING sets ``started_at``; a terminal state sets ``finished_at``;
        QUEUED (resume) sets ``queued_at`` and clears ``finished_at`` and ``cancel_requested``.
        COMPLETED sets ``progress`` to 1. ``fields`` win over these. A ``status_change`` event
        (with ``status_reason``) is appended in the same transaction.

        Raises:
            JobNotFound, InvalidTransition.
        """
        self._check_fields(fields)
        with self.db.transaction() as con:
            return self._set_status(con, self._find(con, job_id), to, fields)

    def set_statuses(
        self, job_id: str, moves: Iterable[tuple[JobStatus | str, Mapping[str, Any]]]
    ) -> TrainingJob:
        """Several ``set_status`` moves in one transaction, e.g. INTERRUPTED then QUEUED for an
        automatic retry: every move is recorded, and no reader sees a middle state as current.

        Raises:
            JobNotFound, InvalidTransition (nothing is written then).
        """
        with self.db.transaction() as con:
            job = self._find(con, job_id)
            for to, fields in moves:
                self._check_fields(fields)
                job = self._set_status(con, job, to, fields)
            return job

    def claim_next(self, max_concurrent: int = 1) -> TrainingJob | None:
        """Atomically move the next QUEUED job to STARTING and return it.

        Nothing is claimed (None) when ``max_concurrent`` jobs are already STARTING, TRAINING or
        CANCELLING, or when none is queued. Order: higher ``priority`` first, then FIFO by
        ``queued_at`` (which is ``created_at`` until a resume re-queues the job).
        """
        with self.db.transaction() as con:
            active = con.execute(f"SELECT COUNT(*) FROM jobs WHERE status IN {_ACTIVE_SQL}")
            if active.fetchone()[0] >= max_concurrent:
                return None
            row = con.execute(
                "SELECT * FROM jobs WHERE status = 'QUEUED' "
                "ORDER BY priority DESC, queued_at, seq LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            job = TrainingJob.from_row(row)
            return self._set_status(con, job, JobStatus.STARTING, {"status_reason": None})

    def request_cancel(
        self, job_id: str, mode: CancelMode = "graceful", reason: str = "cancelled by user"
    ) -> TrainingJob:
        """Ask for a job to stop.

        A QUEUED job becomes CANCELLED at once. A STARTING or TRAINING job becomes CANCELLING
        with ``cancel_requested = mode``; the scheduler sees it and stops the process. A second
        request on a CANCELLING job may raise the mode from "graceful" to "immediate".

        Raises:
            ValueError: ``mode`` is not "graceful" or "immediate".
            JobNotFound: no such job.
            InvalidTransition: the job has already ended.
        """
        if mode not in ("graceful", "immediate"):
            raise ValueError(f"cancel mode must be 'graceful' or 'immediate', not {mode!r}")
        with self.db.transaction() as con:
            job = self._find(con, job_id)
            if job.status is JobStatus.QUEUED:
                fields = {"cancel_requested": mode, "status_reason": f"{reason} before it started"}
                return self._set_status(con, job, JobStatus.CANCELLED, fields)
            if job.status in (JobStatus.STARTING, JobStatus.TRAINING):
                fields = {"cancel_requested": mode, "status_reason": reason}
                return self._set_status(con, job, JobStatus.CANCELLING, fields)
            if job.status is JobStatus.CANCELLING:
                if mode == "immediate":
                    self._write(con, job, {"cancel_requested": mode})
                return job
            raise InvalidTransition(f"Cannot cancel job {job.id}: it is already {job.status}")

    def recover_interrupted(
        self, alive: Callable[[int], bool] = pid_alive, only: Collection[str] | None = None
    ) -> list[str]:
        """Settle jobs left active by a scheduler that died; return the ids changed.

        Call it while holding the scheduler lock, on start (and again later: a child orphaned
        by a dead scheduler may still be alive at first). For each STARTING, TRAINING or
        CANCELLING job (of ``only``, when given): if its newest attempt's pid is alive, it is
        left alone; a STARTING job with no attempt goes back to QUEUED; otherwise the job
        becomes INTERRUPTED with a reason, and its open attempt is closed with outcome
        "interrupted".
        """
        changed: list[str] = []
        with self.db.transaction() as con:
            rows = con.execute(f"SELECT * FROM jobs WHERE status IN {_ACTIVE_SQL}").fetchall()
            for job in map(TrainingJob.from_row, rows):
                if only is not None and job.id not in only:
                    continue
                att = con.execute(
                    "SELECT * FROM attempts WHERE job_id = ? ORDER BY n DESC LIMIT 1", (job.id,)
                ).fetchone()
                running = att is not None and att["finished_at"] is None and att["pid"] is not None
                if running and alive(int(att["pid"])):
                    continue
                if att is None and job.status is JobStatus.STARTING:
                    reason = "the scheduler stopped before the job's process started; queued again"
                    self._set_status(con, job, JobStatus.QUEUED, {"status_reason": reason})
                else:
                    pid = f" (pid {att['pid']})" if att is not None else ""
                    reason = (
                        f"the process running it{pid} is gone: the scheduler or the machine "
                        f"stopped. Resume it with: smalltrain jobs resume {job.id}"
                    )
                    self._set_status(con, job, JobStatus.INTERRUPTED, {"status_reason": reason})
                    if att is not None and att["finished_at"] is None:
                        end_attempt(con, job.id, att["n"], "interrupted", None, reason)
                changed.append(job.id)
        return changed

    def delete_job(self, job_id: str) -> bool:
        """Delete a job with its attempts, events and metrics; False if there was none."""
        with self.db.transaction() as con:
            try:
                job = self._find(con, job_id)
            except JobNotFound:
                return False
            con.execute("DELETE FROM jobs WHERE id = ?", (job.id,))
        return True
