"""Retrying a job whose machine went away.

When the Ray node or worker under a job dies, the attempt ends "interrupted". The job becomes
INTERRUPTED with the reason and, unless it has used up its ``max_retries`` (placement, default
2), goes straight back to the queue in the same transaction, resuming from its newest valid
checkpoint, as its task says (``Task.resume_point``), or from the start when it wrote none
yet. It keeps its place in the queue, and
followers never see it end in between.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from smalltrain import tasks
from smalltrain.engine.checkpoint_index import newest_verified
from smalltrain.engine.context import resume_point_of
from smalltrain.engine.jobs import JobStatus, TrainingJob
from smalltrain.errors import ConfigError, NotResumable
from smalltrain.service.execution.placement import Placement
from smalltrain.store.db import Attempt, JobStore

__all__ = ["interrupt_and_retry", "interruptions_in_a_row", "resume_point"]


def interruptions_in_a_row(attempts: Sequence[Attempt]) -> int:
    """How many of the newest attempts ended "interrupted", one after the other."""
    count = 0
    for attempt in reversed(attempts):
        if attempt.outcome != "interrupted":
            break
        count += 1
    return count


def resume_point(job: TrainingJob) -> Path | None:
    """Where a new attempt of ``job`` starts: where its task says the run resumes from
    (``resume_point_of``), or, for a task this process does not know, the newest verified
    checkpoint in ``run_dir/checkpoints``; None to start over (nothing to resume from)."""
    if not job.run_dir:
        return None
    run_dir = Path(job.run_dir)
    try:
        task = tasks.get_task(job.task)
    except KeyError:
        return newest_verified(run_dir / "checkpoints")
    try:
        return resume_point_of(task, run_dir).path
    except NotResumable:
        return None


def interrupt_and_retry(store: JobStore, job_id: str, fields: Mapping[str, Any]) -> bool:
    """Make the job INTERRUPTED with ``fields``; queue it again when retries are left.

    Returns:
        True when the job was queued again.
    """
    job = store.get_job(job_id)
    try:
        allowed = Placement.from_dict(job.placement).max_retries
    except ConfigError:
        allowed = Placement().max_retries
    used = interruptions_in_a_row(store.history.list_attempts(job.id))
    reason = str(fields.get("status_reason") or "the machine running it went away")
    if used > allowed:
        final = {
            **fields,
            "status_reason": f"{reason}; not retried again after {allowed} retries. "
            f"Resume it with: smalltrain jobs resume {job.id}",
        }
        store.set_status(job.id, JobStatus.INTERRUPTED, **final)
        return False
    start = resume_point(job)
    where = f"from {start.name}" if start is not None else "from the start (no checkpoint yet)"
    again = {
        "resume_from": str(start) if start is not None else None,
        "status_reason": f"retry {used} of {allowed} {where} after: {reason}",
        "queued_at": job.queued_at,  # keep its place in the queue
    }
    store.set_statuses(job.id, [(JobStatus.INTERRUPTED, fields), (JobStatus.QUEUED, again)])
    return True
