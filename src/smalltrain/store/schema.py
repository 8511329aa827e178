"""The SQLite schema of ``smalltrain.db`` and its forward migrations.

The schema version lives in ``PRAGMA user_version``. ``MIGRATIONS[i]`` takes a database from
version ``i`` to ``i + 1``; ``migrate`` applies the missing ones in order inside one
``BEGIN IMMEDIATE`` transaction, so two processes opening a fresh database at once cannot both
migrate it, and a crash mid-migration leaves the old version intact. Never edit a released
migration: append a new one.

Tables (version 3):

- ``datasets(name PK, path, kind, summary JSON, snapshot, fingerprint, quick_fingerprint,
  created_at)``
- ``jobs(seq PK, id UNIQUE, <every TrainingJob field>)``; JSON columns: config, last_metrics,
  artifacts, placement. Indexed for newest-first listing (overall, by status, by dataset), for
  the queue (status, priority, queued_at) and by sweep.
- ``attempts(job_id FK, n, pid, host, resume_from, started_at, finished_at, outcome, exit_code,
  error)``, primary key (job_id, n).
- ``events(id PK AUTOINCREMENT, job_id FK, type, time, data JSON)``: ``data`` is the event's
  ``to_dict()``; state changes are stored with type ``"status_change"``.
- ``metrics(job_id FK, scope "step"|"epoch", epoch, step, key, value)``; a NaN value is stored
  as NULL (SQLite has no NaN) and read back as NaN.

- ``sweeps(id PK, dataset, task, metric, mode "min"|"max", spec JSON, status, status_reason,
  best_job_id, best_model, created_at, finished_at)``; its trials are the jobs with its
  ``sweep_id``.

Deleting a job cascades to its attempts, events and metrics.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate", "schema_version"]

_V1: tuple[str, ...] = (
    """CREATE TABLE datasets (
        name TEXT PRIMARY KEY,
        path TEXT NOT NULL,
        kind TEXT NOT NULL,
        summary TEXT NOT NULL DEFAULT '{}',
        snapshot TEXT NOT NULL DEFAULT '',
        fingerprint TEXT NOT NULL DEFAULT '',
        quick_fingerprint TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL
    )""",
    """CREATE TABLE jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        task TEXT NOT NULL,
        dataset TEXT,
        dataset_path TEXT NOT NULL,
        model_name TEXT NOT NULL DEFAULT '',
        config TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        updated_at REAL,
        epoch INTEGER NOT NULL DEFAULT 0,
        total_epochs INTEGER,
        step INTEGER NOT NULL DEFAULT 0,
        total_steps INTEGER,
        progress REAL NOT NULL DEFAULT 0,
        last_metrics TEXT NOT NULL DEFAULT '{}',
        error TEXT,
        error_traceback TEXT,
        run_dir TEXT,
        checkpoint_path TEXT,
        artifacts TEXT NOT NULL DEFAULT '{}',
        cancel_requested TEXT,
        status_reason TEXT,
        device TEXT,
        resume_from TEXT
    )""",
    "CREATE INDEX jobs_by_created ON jobs(created_at, seq)",
    "CREATE INDEX jobs_by_status ON jobs(status, created_at, seq)",
    "CREATE INDEX jobs_by_dataset ON jobs(dataset, created_at, seq)",
    """CREATE TABLE attempts (
        job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        n INTEGER NOT NULL,
        pid INTEGER,
        host TEXT,
        resume_from TEXT,
        started_at REAL NOT NULL,
        finished_at REAL,
        outcome TEXT,
        exit_code INTEGER,
        error TEXT,
        PRIMARY KEY (job_id, n)
    )""",
    """CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        type TEXT NOT NULL,
        time REAL NOT NULL,
        data TEXT NOT NULL
    )""",
    "CREATE INDEX events_by_job ON events(job_id, id)",
    """CREATE TABLE metrics (
        job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        scope TEXT NOT NULL CHECK (scope IN ('step', 'epoch')),
        epoch INTEGER NOT NULL,
        step INTEGER NOT NULL,
        key TEXT NOT NULL,
        value REAL
    )""",
    "CREATE INDEX metrics_by_key ON metrics(job_id, key, scope, step)",
)

# Version 2: the queue. ``queued_at`` orders the FIFO (a resumed job queues behind jobs that
# were waiting already, which ``created_at`` would not do) and ``priority`` lets a job jump it.
_V2: tuple[str, ...] = (
    "ALTER TABLE jobs ADD COLUMN queued_at REAL",
    "ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0",
    "UPDATE jobs SET queued_at = created_at WHERE queued_at IS NULL",
    "CREATE INDEX jobs_queue ON jobs(status, priority DESC, queued_at, seq)",
)

# Version 3: sweeps and placement. A sweep's trials are ordinary jobs that carry its id;
# ``placement`` holds a job's where-to-run settings (CPUs, GPUs, retries), apart from the task's
# config. ``sweeps.status``: RUNNING, then FINALIZING while one process registers the best
# trial, then COMPLETED or FAILED.
_V3: tuple[str, ...] = (
    "ALTER TABLE jobs ADD COLUMN sweep_id TEXT",
    "ALTER TABLE jobs ADD COLUMN placement TEXT NOT NULL DEFAULT '{}'",
    "CREATE INDEX jobs_by_sweep ON jobs(sweep_id, seq)",
    """CREATE TABLE sweeps (
        id TEXT PRIMARY KEY,
        dataset TEXT,
        task TEXT NOT NULL,
        metric TEXT NOT NULL,
        mode TEXT NOT NULL CHECK (mode IN ('min', 'max')),
        spec TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL,
        status_reason TEXT,
        best_job_id TEXT,
        best_model TEXT,
        created_at REAL NOT NULL,
        finished_at REAL
    )""",
    "CREATE INDEX sweeps_by_created ON sweeps(created_at)",
)

#: ``MIGRATIONS[i]`` moves the schema from version i to i + 1.
MIGRATIONS: tuple[Sequence[str], ...] = (_V1, _V2, _V3)
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(con: sqlite3.Connection) -> int:
    """The database's schema version (0 for a new, empty database)."""
    return int(con.execute("PRAGMA user_version").fetchone()[0])


def migrate(con: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Apply the missing migrations up to ``target`` in one transaction; return the version.

    ``con`` must be in autocommit mode (``isolation_level=None``).

    Raises:
        RuntimeError: the database is newer than this smalltrain (downgrades are not supported).
    """
    con.execute("BEGIN IMMEDIATE")
    try:
        version = schema_version(con)
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"this database has schema version {version}, newer than this smalltrain "
                f"understands ({SCHEMA_VERSION}); upgrade smalltrain"
            )
        for steps in MIGRATIONS[version:target]:
            for sql in steps:
                con.execute(sql)
        if target > version:
            con.execute(f"PRAGMA user_version = {int(target)}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return max(version, target)
