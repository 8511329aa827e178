"""Settling jobs whose owner died, so that no job stays "live-looking" after a crash.

A job is STARTING, TRAINING or CANCELLING only while a scheduler runs it, and a running
scheduler always holds the home's lock (``scheduler.lock``); the kernel drops that lock the
moment its process dies, ``kill -9`` included. So a job that looks active while nobody holds
the lock has lost its owner. Every command that reads or changes a job calls
``recover_orphans`` first, and the scheduler calls ``settle`` on start and every few seconds:

- the job's training process (``run_dir/process.pid``), which checkpoints and exits by itself
  when its parent dies, is waited for (``wait_s``), and killed if it is still there after;
- a job whose model is already in the registry (its owner died during or right after
  registration) becomes COMPLETED with that model: it is never trained or registered again;
- any other such job becomes INTERRUPTED (resumable at once), or QUEUED again if its process
  never started;
- the temporary files a killed write left in its run folder are deleted.

A client settling jobs holds the lock only for a moment, under the role ``recovery``;
``scheduler_running`` (and a starting scheduler) wait for such a holder instead of taking it
for a scheduler. A final job state the store refused (a full disk) is kept as ``Unrecorded``
by the process that ran the job, shown from memory and written by ``record_unrecorded`` once
the store takes it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smalltrain import paths
from smalltrain.engine.fsutil import remove_partial_writes
from smalltrain.engine.jobs import ACTIVE, JobStatus, TrainingJob
from smalltrain.engine.locks import HolderLock, pid_alive, read_holder, try_lock
from smalltrain.errors import (
    DiskFull,
    InvalidName,
    InvalidTransition,
    RegistryCorrupt,
    StoreError,
)
from smalltrain.service.execution.executors import read_pid_file
from smalltrain.service.planning import dataset_name
from smalltrain.service.registration import completed_fields
from smalltrain.store.db import JobStore
from smalltrain.store.models import ModelStore

__all__ = [
    "RECOVERY_ROLE",
    "TRANSIENT_WAIT_S",
    "Unrecorded",
    "clean_run_dir",
    "final_state",
    "record_unrecorded",
    "recover_orphans",
    "scheduler_running",
    "settle",
    "take_lock",
    "transient_holder",
]

log = logging.getLogger(__name__)

#: The role a recovering client writes into the scheduler lock while it holds it (briefly).
RECOVERY_ROLE = "recovery"
_PROBE_ROLE = "probe"
#: Holders that keep the lock only for a moment (a client settling orphans, or probing).
_TRANSIENT = (RECOVERY_ROLE, _PROBE_ROLE)
#: How long a starting scheduler or a probe waits for such a holder.
TRANSIENT_WAIT_S = 20.0
_POLL_S = 0.05


def transient_holder(holder: dict[str, Any] | None) -> bool:
    """Whether the scheduler lock's holder keeps it only for a moment (not a scheduler)."""
    # An empty lock file: a holder between taking the lock and writing its name, or gone.
    return holder is None or holder.get("role") in _TRANSIENT


def take_lock(path: Path, role: str) -> HolderLock | None:
    """Take the scheduler lock at ``path`` as ``role``, waiting (up to ``TRANSIENT_WAIT_S``)
    while a transient holder has it; None if a scheduler holds it."""
    deadline = time.monotonic() + TRANSIENT_WAIT_S
    while True:
        lock = try_lock(path, role=role)
        if lock is not None:
            return lock
        if not transient_holder(read_holder(path)) or time.monotonic() >= deadline:
            return None
        time.sleep(0.02)


def scheduler_running(home: Path) -> dict[str, Any] | None:
    """Who holds the home's scheduler lock ({"pid", "host", "since"}), or None if nobody.

    A client holding it for a moment (settling orphaned jobs, or asking this same question)
    is not a scheduler: it is waited for.
    """
    path = paths.scheduler_lock_path(Path(home))
    lock = take_lock(path, role=_PROBE_ROLE)
    if lock is not None:
        lock.release()
        return None
    return read_holder(path) or {"pid": None}


@dataclass(frozen=True)
class Unrecorded:
    """A job's final state the store refused: ``job`` as shown, ``fields`` as to be written."""

    job: TrainingJob
    status: JobStatus
    fields: dict[str, Any]


def final_state(
    job: TrainingJob, status: JobStatus, fields: dict[str, Any], note: str = ""
) -> Unrecorded:
    """What to keep of a final state the store could not take (``note``: why, for the user)."""
    fields = {k: v for k, v in fields.items() if k in TrainingJob.__dataclass_fields__}
    if status is JobStatus.FAILED:
        fields.setdefault("error", fields.get("status_reason"))
    shown = {**fields, "status_reason": f"{fields.get('status_reason') or status.value}{note}"}
    return Unrecorded(dataclasses.replace(job, status=status, **shown), status, fields)


def record_unrecorded(store: JobStore, unrecorded: dict[str, Unrecorded]) -> None:
    """Write the kept final states the store now takes; keep the others for a later call."""
    for job_id, final in list(unrecorded.items()):
        try:
            if store.get_job(job_id).status in ACTIVE:
                store.set_status(job_id, final.status, **final.fields)
        except (StoreError, DiskFull, InvalidTransition):
            continue  # still full: keep it for the next call
        unrecorded.pop(job_id, None)


def recover_orphans(
    store: JobStore, home: Path, models: ModelStore | None = None, *, wait_s: float = 0.0
) -> list[str]:
    """Settle the active-looking jobs of ``home`` when no scheduler owns them; return their ids.

    Cheap when nothing looks active (one count query) or when a scheduler holds the lock
    (one failed ``flock``). Call it from a process that does not run the home's scheduler.

    Args:
        wait_s: how long to wait for a dead owner's training process to finish its last
            checkpoint before killing it; 0 leaves such jobs alone until it has exited.
    """
    if not store.count_jobs(list(ACTIVE)):
        return []
    lock = try_lock(paths.scheduler_lock_path(Path(home)), role=RECOVERY_ROLE)
    if lock is None:
        return []  # a live scheduler owns them
    try:
        # Nobody runs a scheduler: the attempts' pids are dead schedulers' (or recycled).
        return settle(store, models, wait_s=wait_s, kill=wait_s > 0, alive=lambda _pid: False)
    finally:
        lock.release()


def settle(
    store: JobStore,
    models: ModelStore | None,
    *,
    wait_s: float = 0.0,
    kill: bool = False,
    alive: Callable[[int], bool] = pid_alive,
    skip: Collection[str] = (),
) -> list[str]:
    """Settle active jobs left by a dead scheduler; call it while holding the scheduler lock.

    Args:
        wait_s: how long to wait in all for orphaned training processes to exit.
        kill: kill an orphaned training process still running after ``wait_s``; otherwise
            its job is left alone for a later pass.
        alive: whether an attempt's (scheduler's) pid still runs the job.
        skip: ids of jobs the calling scheduler runs itself.

    Returns:
        The ids of the jobs changed.
    """
    deadline = time.monotonic() + wait_s
    ready: list[TrainingJob] = []
    for job in store.list_jobs(status=list(ACTIVE), limit=None):
        if job.id in skip or not _child_gone(job, deadline, kill):
            continue
        ready.append(job)
        if job.run_dir:
            clean_run_dir(Path(job.run_dir))
    done = _complete_registered(store, models, ready)
    rest = {j.id for j in ready} - set(done)
    changed = store.recover_interrupted(alive=alive, only=rest) if rest else []
    for job_id in [*done, *changed]:
        log.info("recovered job %s left behind by a stopped scheduler", job_id)
    return [*done, *changed]


def clean_run_dir(run_dir: Path) -> list[Path]:
    """Delete partial writes a killed process left anywhere in a run folder (nobody writes it
    now): the engine's checkpoints and exports, and whatever folders a task writes through
    ``atomic_write`` (detection's ``ultralytics/<run>/weights``)."""
    if not run_dir.is_dir():
        return []
    removed: list[Path] = []
    for folder in [run_dir, *sorted(p for p in run_dir.rglob("*") if p.is_dir())]:
        removed += remove_partial_writes(folder)
    return removed


def _child_gone(job: TrainingJob, deadline: float, kill: bool) -> bool:
    """Whether the job's training process is gone (waiting until ``deadline``, then killing
    it when ``kill``)."""
    pid = read_pid_file(Path(job.run_dir)) if job.run_dir else None
    if pid is None or pid == os.getpid():
        return True
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(_POLL_S)
    if not pid_alive(pid):
        return True
    if not kill:
        return False
    log.warning("job %s: killing its orphaned training process %d", job.id, pid)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    end = time.monotonic() + 5.0
    while pid_alive(pid) and time.monotonic() < end:
        time.sleep(_POLL_S)
    return not pid_alive(pid)


def _complete_registered(
    store: JobStore, models: ModelStore | None, jobs: list[TrainingJob]
) -> list[str]:
    """Complete the jobs whose model is already registered; return their ids."""
    if models is None:
        return []
    done = []
    for job in jobs:
        dataset = job.dataset or dataset_name(Path(job.dataset_path))
        try:
            info = models.find_by_job(dataset, job.id)
        except (RegistryCorrupt, InvalidName):
            info = None
        if info is None:
            continue
        attempts = store.history.list_attempts(job.id)
        if attempts and attempts[-1].finished_at is None:
            store.history.finish_attempt(job.id, attempts[-1].n, "completed")
        fields = completed_fields(job, info, note="its scheduler stopped right after")
        with contextlib.suppress(InvalidTransition):
            store.set_status(job.id, JobStatus.COMPLETED, **fields)
            done.append(job.id)
    return done
