"""Training jobs: ``JobStatus``, its transition table, and the ``TrainingJob`` record.

The state machine is data: ``TRANSITIONS`` maps each state to the states it may move to, and
``transition`` / ``check_transition`` are the only places that enforce it (the job store calls
``check_transition`` inside its write transaction)::

    QUEUED      -> STARTING, CANCELLED (cancelled before it ran), FAILED (could not start)
    STARTING    -> TRAINING, QUEUED (released), CANCELLING, COMPLETED, CANCELLED, FAILED,
                   INTERRUPTED
    TRAINING    -> CANCELLING, COMPLETED, CANCELLED, FAILED, INTERRUPTED
    CANCELLING  -> CANCELLED, COMPLETED (finished first), FAILED, INTERRUPTED
    CANCELLED, FAILED, INTERRUPTED -> QUEUED   (resume: a new attempt of the same job)
    COMPLETED   -> nothing (final)

- STARTING means a scheduler claimed the job and is starting its process; STARTING → QUEUED
  gives a claimed job back to the queue (its process never started).
- INTERRUPTED means the process running the job (or the host) died without a word; such a job
  can be resumed from its newest checkpoint.
- The simpler IDLE → TRAINING → COMPLETED machine is ``simple_state(status)``
  (``seed_state``, its older name, stays as an alias).
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

from smalltrain.errors import InvalidTransition

__all__ = [
    "ACTIVE",
    "JOB_FIELDS",
    "JSON_FIELDS",
    "RESUMABLE",
    "TERMINAL",
    "TRANSITIONS",
    "JobStatus",
    "TrainingJob",
    "check_transition",
    "new_job_id",
    "seed_state",
    "simple_state",
    "transition",
]


class JobStatus(str, Enum):
    """Where a training job is in its life. The value is the upper-case name."""

    QUEUED = "QUEUED"
    STARTING = "STARTING"
    TRAINING = "TRAINING"
    CANCELLING = "CANCELLING"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"
    INTERRUPTED = "INTERRUPTED"

    def __str__(self) -> str:
        return self.value


S = JobStatus

#: The one transition table. A move not listed here raises ``InvalidTransition``.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    S.QUEUED: frozenset({S.STARTING, S.CANCELLED, S.FAILED}),
    S.STARTING: frozenset(
        {S.QUEUED, S.TRAINING, S.CANCELLING, S.COMPLETED, S.CANCELLED, S.FAILED, S.INTERRUPTED}
    ),
    S.TRAINING: frozenset({S.CANCELLING, S.COMPLETED, S.CANCELLED, S.FAILED, S.INTERRUPTED}),
    S.CANCELLING: frozenset({S.CANCELLED, S.COMPLETED, S.FAILED, S.INTERRUPTED}),
    S.COMPLETED: frozenset(),
    S.CANCELLED: frozenset({S.QUEUED}),
    S.FAILED: frozenset({S.QUEUED}),
    S.INTERRUPTED: frozenset({S.QUEUED}),
}

#: States a job never leaves on its own (only resume moves some of them back to QUEUED).
TERMINAL: frozenset[JobStatus] = frozenset({S.COMPLETED, S.CANCELLED, S.FAILED, S.INTERRUPTED})
#: States in which a process is (or should be) running the job.
ACTIVE: frozenset[JobStatus] = frozenset({S.STARTING, S.TRAINING, S.CANCELLING})
#: States from which ``resume`` may start a new attempt (the manager also checks FAILED jobs
#: have a usable checkpoint).
RESUMABLE: frozenset[JobStatus] = frozenset({S.CANCELLED, S.FAILED, S.INTERRUPTED})

SimpleState = Literal["idle", "training", "completed"]


def simple_state(status: JobStatus | str) -> SimpleState:
    """Map a status onto the simpler IDLE → TRAINING → COMPLETED view.

    QUEUED, CANCELLED, FAILED and INTERRUPTED are "idle"; STARTING, TRAINING and CANCELLING
    are "training"; COMPLETED is "completed".
    """
    status = JobStatus(status)
    if status is S.COMPLETED:
        return "completed"
    if status in ACTIVE:
        return "training"
    return "idle"


seed_state = simple_state  # the older name, kept for callers of the original API


def check_transition(job_id: str, current: JobStatus | str, to: JobStatus | str) -> JobStatus:
    """Check that a job may move from ``current`` to ``to``; return ``to`` as a JobStatus.

    Raises:
        InvalidTransition: the move is not in ``TRANSITIONS``; the message names the job, both
            states and the moves that are allowed.
    """
    current, to = JobStatus(current), JobStatus(to)
    allowed = TRANSITIONS[current]
    if to not in allowed:
        options = ", ".join(sorted(s.value for s in allowed)) or f"none ({current} is final)"
        raise InvalidTransition(
            f"Cannot move job {job_id} from {current} to {to}; allowed from {current}: {options}"
        )
    return to


def transition(job: TrainingJob, to: JobStatus | str) -> TrainingJob:
    """Move ``job`` to ``to`` in memory (no timestamps, no store); return the job.

    Raises:
        InvalidTransition: see ``check_transition``.
    """
    job.status = check_transition(job.id, job.status, to)
    return job


def new_job_id() -> str:
    """A fresh job id: the first 12 hex digits of a uuid4 (unique prefixes of 4+ also work)."""
    return uuid.uuid4().hex[:12]


@dataclass
class TrainingJob:
    """One training job as the store records it. Timestamps are epoch seconds (floats).

    ``config`` is the task config's ``to_dict()`` form; ``last_metrics`` is a flat dict with
    slash keys; ``artifacts`` maps a name ("weights", "tensorboard", ...) to a path string.
    ``cancel_requested`` is None, "graceful" or "immediate". ``status_reason`` says in words
    why the job ended or why it waits. ``step``/``total_steps`` count global optimizer steps.
    ``placement`` holds where-to-run settings that are not the task's config (``num_cpus``,
    ``num_gpus``, ``max_retries``, ``ship_dataset``; see ``service.placement``).
    """

    task: str
    dataset_path: str
    dataset: str | None = None
    model_name: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=new_job_id)
    status: JobStatus = JobStatus.QUEUED
    attempts: int = 0
    priority: int = 0
    created_at: float = field(default_factory=time.time)
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    updated_at: float | None = None
    epoch: int = 0
    total_epochs: int | None = None
    step: int = 0
    total_steps: int | None = None
    progress: float = 0.0
    last_metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_traceback: str | None = None
    run_dir: str | None = None
    checkpoint_path: str | None = None
    artifacts: dict[str, Any] = field(default_factory=dict)
    cancel_requested: str | None = None
    status_reason: str | None = None
    device: str | None = None
    resume_from: str | None = None
    sweep_id: str | None = None  # the sweep this job is a trial of
    placement: dict[str, Any] = field(default_factory=dict)  # num_cpus, num_gpus, max_retries

    def __post_init__(self) -> None:
        self.status = JobStatus(self.status)
        if self.queued_at is None:
            self.queued_at = self.created_at

    @property
    def short_id(self) -> str:
        """The first 8 characters of the id, for tables."""
        return self.id[:8]

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @property
    def simple_state(self) -> SimpleState:
        """The simpler view: "idle", "training" or "completed"."""
        return simple_state(self.status)

    seed_state = simple_state  # the older name

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (status as its string value)."""
        out = dataclasses.asdict(self)
        out["status"] = self.status.value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingJob:
        """Rebuild a job from ``to_dict`` output (unknown keys are ignored)."""
        return cls(**{k: v for k, v in data.items() if k in JOB_FIELDS})

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> TrainingJob:
        """Build a job from a database row (a ``sqlite3.Row`` or a dict of column values).

        JSON columns (``config``, ``last_metrics``, ``artifacts``) may arrive as strings.
        """
        keys = row.keys()
        data: dict[str, Any] = {}
        for name in JOB_FIELDS:
            if name not in keys:
                continue
            value = row[name]
            if name in JSON_FIELDS:
                value = json.loads(value) if isinstance(value, (str, bytes)) else dict(value or {})
            data[name] = value
        return cls(**data)


#: Every field of ``TrainingJob`` (and column of the ``jobs`` table), in order.
JOB_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(TrainingJob))
#: Fields stored as JSON text.
JSON_FIELDS: frozenset[str] = frozenset({"config", "last_metrics", "artifacts", "placement"})
