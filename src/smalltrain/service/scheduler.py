"""The scheduler: one per home, it claims queued jobs and runs each through an executor.

- **One per home.** ``run`` takes ``home/scheduler.lock`` with ``locks.try_lock``; a second
  scheduler gets ``SchedulerBusy`` naming the holder.
- **Recovery.** On start, and every few seconds after, ``JobStore.recover_interrupted`` settles
  jobs a dead scheduler left active: INTERRUPTED (resumable) once their process is gone, or
  back to QUEUED when it never started. A child orphaned by a dead scheduler checkpoints and
  exits by itself (see ``execution``), so its job is settled as soon as it is gone.
- **Queue.** FIFO (``claim_next``) up to ``max_concurrent`` jobs. While a ``ResourceMonitor``
  says the machine is constrained, queued jobs wait and their ``status_reason`` says why.
- **Cancel across processes.** Any process writes ``cancel_requested`` into the database; the
  scheduler polls it at least every ``poll_s`` and forwards it to the job's cancel token.
- **Events.** Each running job's events go through a ``sink.JobEventSink``: non-step events
  are stored at once, step metrics in batches, and the job's progress kept up to date. While
  jobs run, a constrained machine adds a "resources" warning event to each of them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smalltrain import paths
from smalltrain.engine.checkpoint_index import newest_verified
from smalltrain.engine.context import CancelMode, CancelToken, ResourceLimits, cancel_mode
from smalltrain.engine.events import (
    WarningEvent,
)
from smalltrain.engine.jobs import ACTIVE, JobStatus, TrainingJob
from smalltrain.engine.locks import HolderLock, pid_alive, read_holder, try_lock
from smalltrain.errors import SchedulerBusy
from smalltrain.service.attempt import ExecOutcome, ExecSpec
from smalltrain.service.executors import Executor, read_pid_file
from smalltrain.service.placement import Placement
from smalltrain.service.retry import interrupt_and_retry
from smalltrain.service.sink import JobEventSink, Publish
from smalltrain.service.threads import thread_budget
from smalltrain.store.db import JobStore

__all__ = ["Scheduler", "lock_path", "scheduler_running"]

log = logging.getLogger(__name__)

OnFinished = Callable[[TrainingJob, ExecOutcome], dict[str, Any]]


def lock_path(home: Path) -> Path:
    """The lock file that makes one scheduler per home."""
    return paths.scheduler_lock_path(Path(home))


def scheduler_running(home: Path) -> dict[str, Any] | None:
    """Who holds the home's scheduler lock ({"pid", "host", "since"}), or None if nobody."""
    lock = try_lock(lock_path(home))
    if lock is not None:
        lock.release()
        return None
    return read_holder(lock_path(home)) or {"pid": None}


@dataclass
class _Running:
    """A job this scheduler is running."""

    job: TrainingJob
    token: CancelToken
    thread: threading.Thread | None = None
    sink: JobEventSink | None = None
    spec: ExecSpec | None = None
    attempt: int = 0


class Scheduler:
    """Claims queued jobs of one home and runs them (see the module docstring).

    Args:
        store: the home's job store.
        home: the home folder (lock file, ``runs/``, ``cache/``).
        executor: where jobs run.
        on_finished: called after a job's attempt ends; returns extra fields for the final
            status (the manager registers the model here on success).
        publish: called with every event of a running job, then ``(job_id, None)`` at its end.
        max_concurrent: how many jobs may run at once.
        resource_monitor: an optional ``ResourceMonitor``; queued jobs wait while constrained.
        poll_s / idle_poll_s: loop period while jobs run / while idle.
        stop_after: job ids; once all of them have finished, claim nothing more and return
            from ``run`` (a foreground ``smalltrain train`` runs its own job, not the queue).
    """

    def __init__(
        self,
        store: JobStore,
        home: Path,
        executor: Executor,
        on_finished: OnFinished,
        publish: Publish,
        *,
        max_concurrent: int = 1,
        resource_monitor: Any = None,
        poll_s: float = 0.25,
        idle_poll_s: float = 1.0,
        recover_every_s: float = 2.0,
        alert_every_s: float = 5.0,
        orphan_wait_s: float = 15.0,
        stop_after: set[str] | None = None,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent={max_concurrent}: must be >= 1")
        self.store = store
        self.home = Path(home)
        self.executor = executor
        self.on_finished = on_finished
        self.publish = publish
        self.max_concurrent = max_concurrent
        self.monitor = resource_monitor
        self.poll_s = poll_s
        self.idle_poll_s = idle_poll_s
        self.recover_every_s = recover_every_s
        self.alert_every_s = alert_every_s
        self.orphan_wait_s = orphan_wait_s
        self.stop_after = set(stop_after) if stop_after else None
        self.finished: set[str] = set()
        self.running: dict[str, _Running] = {}
        self.wake = threading.Event()
        self.stop_requested = threading.Event()
        self._lock = threading.Lock()
        self._recovered_at = 0.0
        self._alerted_at = 0.0
        self._alerting = False
        self._held_reason: str | None = None
        self._home_lock: HolderLock | None = None

    # -- the loop ---------------------------------------------------------------------------

    def acquire(self) -> None:
        """Take the home's scheduler lock (``run`` does it if not done yet).

        Raises:
            SchedulerBusy: another scheduler holds this home.
        """
        if self._home_lock is not None:
            return
        self._home_lock = try_lock(lock_path(self.home), role="scheduler")
        if self._home_lock is None:
            holder = read_holder(lock_path(self.home)) or {}
            raise SchedulerBusy(
                f"another scheduler (pid {holder.get('pid', '?')} on {holder.get('host', '?')}) "
                f"already runs the jobs of {self.home}; jobs you queue will run there"
            )

    def run(self, until_idle: bool = False) -> None:
        """Run until ``stop()`` (or, with ``until_idle``, until nothing is queued or running).

        Raises:
            SchedulerBusy: another scheduler holds this home.
        """
        self.acquire()
        while True:
            try:
                self._loop(until_idle)
            finally:
                self._shutdown()
                if self._home_lock is not None:
                    self._home_lock.release()
                    self._home_lock = None
            if not until_idle or self.stop_requested.is_set() or self._done_with_targets():
                return
            # A job queued while this scheduler was leaving: its client saw the lock still held
            # and started no worker, so take the lock again and run it.
            if not self.store.count_jobs(JobStatus.QUEUED):
                return
            try:
                self.acquire()
            except SchedulerBusy:
                return

    def _loop(self, until_idle: bool) -> None:
        self._recover(force=True)
        while not self.stop_requested.is_set():
            self._tick()
            if until_idle and self._idle():
                break
            if self._done_with_targets() and not self.running:
                break
            self.wake.wait(self.poll_s if self.running else self.idle_poll_s)
            self.wake.clear()

    def stop(self) -> None:
        """Ask ``run`` to return: running jobs are cancelled (they checkpoint) and awaited."""
        self.stop_requested.set()
        self.wake.set()

    def _tick(self) -> None:
        self._reap()
        self._forward_cancels()
        self._recover()
        self._resource_alerts()
        self._start_queued()

    def _done_with_targets(self) -> bool:
        """With ``stop_after``: whether every listed job has finished (then claim no more)."""
        return self.stop_after is not None and self.stop_after <= self.finished

    def _idle(self) -> bool:
        return not self.running and self.store.count_jobs([*ACTIVE, JobStatus.QUEUED]) == 0

    def _shutdown(self) -> None:
        for run in list(self.running.values()):
            if not run.token.is_set():
                run.token.cancel("the scheduler is shutting down", "graceful")
        for run in list(self.running.values()):
            if run.thread is not None:
                run.thread.join()
        self._reap()

    # -- recovery and cancel ----------------------------------------------------------------

    def _recover(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._recovered_at < self.recover_every_s:
            return
        self._recovered_at = now
        if force:
            self._await_orphans()
        changed = self.store.recover_interrupted(alive=pid_alive)
        for job_id in changed:
            log.info("recovered job %s left behind by a stopped scheduler", job_id)

    def _await_orphans(self) -> None:
        """Let children of a dead scheduler finish their cancel checkpoint, then kill them.

        Such a child saw its parent vanish and is checkpointing; resuming its job while it
        still writes the run folder would race with it.
        """
        deadline = time.monotonic() + self.orphan_wait_s
        for job in self.store.list_jobs(status=list(ACTIVE), limit=None):
            pid = read_pid_file(Path(job.run_dir)) if job.run_dir else None
            if pid is None or pid == os.getpid():
                continue
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if pid_alive(pid):
                log.warning("job %s: killing its orphaned training process %d", job.id, pid)
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)

    def _forward_cancels(self) -> None:
        if not self.running:
            return
        for job in self.store.list_jobs(status=JobStatus.CANCELLING, limit=None):
            run = self.running.get(job.id)
            if run is None or not job.cancel_requested:
                continue
            if not run.token.is_set() or (
                job.cancel_requested == "immediate" and run.token.mode != "immediate"
            ):
                reason = job.status_reason or "cancelled by user"
                run.token.cancel(reason, cancel_mode(job.cancel_requested))

    def cancel_local(self, job_id: str, mode: CancelMode, reason: str) -> bool:
        """Cancel a job this scheduler runs at once, without waiting for the next poll."""
        run = self.running.get(job_id)
        if run is None:
            return False
        run.token.cancel(reason, mode)
        return True

    # -- resources --------------------------------------------------------------------------

    def _constrained(self) -> str | None:
        if self.monitor is None:
            return None
        status = self.monitor.check()
        if not status.constrained:
            return None
        return "; ".join(status.reasons) or "the machine is short of memory"

    def _resource_alerts(self) -> None:
        now = time.monotonic()
        if self.monitor is None or not self.running or now - self._alerted_at < self.alert_every_s:
            return
        self._alerted_at = now
        reason = self._constrained()
        if reason is not None and not self._alerting:
            for run in list(self.running.values()):
                if run.sink is not None:
                    run.sink(WarningEvent(code="resources", message=f"resources low: {reason}"))
        self._alerting = reason is not None

    def _hold_queue(self, reason: str | None) -> None:
        """Write (or clear) why queued jobs wait, only when it changes."""
        if reason == self._held_reason:
            return
        self._held_reason = reason
        text = None if reason is None else f"waiting: {reason}"
        for job in self.store.list_jobs(status=JobStatus.QUEUED, limit=None):
            self.store.update_job(job.id, status_reason=text)

    # -- starting and finishing jobs --------------------------------------------------------

    def _start_queued(self) -> None:
        while len(self.running) < self.max_concurrent and not self._done_with_targets():
            if self.monitor is not None and self.store.count_jobs(JobStatus.QUEUED):
                reason = self._constrained()
                self._hold_queue(reason)
                if reason is not None:
                    return
            job = self.store.claim_next(self.max_concurrent)
            if job is None:
                return
            self._launch(job)

    def _launch(self, job: TrainingJob) -> None:
        run = _Running(job=job, token=CancelToken())
        try:
            run.spec = self._spec(job)
            self.store.update_job(job.id, run_dir=str(run.spec.run_dir))
            resume = str(run.spec.resume_from) if run.spec.resume_from else None
            # The attempt is recorded before any other recovery pass can see the job.
            run.attempt = self.store.start_attempt(job.id, os.getpid(), resume)
        except Exception as exc:
            log.exception("job %s could not start", job.id)
            self.store.set_status(job.id, JobStatus.FAILED, status_reason=str(exc), error=str(exc))
            return
        run.sink = JobEventSink(self.store, job.id, self.publish)
        run.thread = threading.Thread(
            target=self._run_job, args=(run,), name=f"smalltrain-job-{job.id}", daemon=True
        )
        with self._lock:
            self.running[job.id] = run
        run.thread.start()

    def _reap(self) -> None:
        with self._lock:
            done = [k for k, r in self.running.items() if r.thread and not r.thread.is_alive()]
            for job_id in done:
                del self.running[job_id]

    def _spec(self, job: TrainingJob) -> ExecSpec:
        run_dir = Path(job.run_dir or paths.run_dir(self.home, job.id))
        resume = Path(job.resume_from) if job.resume_from else None
        if resume is not None and not resume.is_file():
            resume = newest_verified(run_dir / "checkpoints")
        gpu_cap = job.config.get("max_gpu_memory_percent")
        placement = Placement.from_dict(job.placement)
        # Jobs that share this machine share its cores (see service.threads).
        threads = placement.num_cpus or job.config.get("cpu_threads")
        threads = threads or thread_budget(self.max_concurrent)
        return ExecSpec(
            job_id=job.id,
            task=job.task,
            config=job.config,
            dataset_path=Path(job.dataset_path),
            run_dir=run_dir,
            resume_from=resume,
            device=job.device or "auto",
            limits=ResourceLimits(
                max_gpu_memory_percent=float(gpu_cap) if gpu_cap else None,
                cpu_threads=max(1, int(threads)),
            ),
            cache_dir=paths.cache_dir(self.home),
            placement=dict(job.placement),
            dataset_fingerprint=str(job.artifacts.get("dataset_fingerprint", "")),
        )

    def _run_job(self, run: _Running) -> None:
        job = run.job
        try:
            assert run.sink is not None
            assert run.spec is not None
            outcome = self.executor.execute(run.spec, run.sink, run.token)
            run.sink.flush()
        except Exception as exc:  # a bug or a store error: the job must still end
            log.exception("job %s could not run", job.id)
            outcome = ExecOutcome("failed", error=f"{type(exc).__name__}: {exc}")
        retried = False
        try:
            retried = self._finish(job, run, outcome)
        finally:
            if not retried:  # a retried job goes on: its followers keep following it
                self.finished.add(job.id)
                self.publish(job.id, None)
            self.wake.set()

    def _finish(self, job: TrainingJob, run: _Running, outcome: ExecOutcome) -> bool:
        """Record how the attempt ended; True when the job was queued again for a retry."""
        status = {
            "completed": JobStatus.COMPLETED,
            "cancelled": JobStatus.CANCELLED,
            "failed": JobStatus.FAILED,
            "interrupted": JobStatus.INTERRUPTED,
        }[outcome.status]
        fields: dict[str, Any] = {}
        if outcome.status == "completed":
            try:
                fields = self.on_finished(job, outcome)
            except Exception as exc:
                log.exception("job %s: registering the model failed", job.id)
                status = JobStatus.FAILED
                outcome = ExecOutcome("failed", result=outcome.result, exit_code=outcome.exit_code,
                                      error=f"training finished but the model could not be "
                                            f"registered: {type(exc).__name__}: {exc}")  # fmt: skip
        if outcome.status == "cancelled":
            fields["status_reason"] = outcome.error or run.token.reason or "cancelled"
        elif outcome.status == "failed":
            fields.update(
                status_reason=outcome.error,
                error=outcome.error,
                error_traceback=outcome.traceback,
            )
        elif outcome.status == "interrupted":
            fields["status_reason"] = outcome.error
        self.store.finish_attempt(
            job.id, run.attempt, outcome.status, outcome.exit_code, outcome.error
        )
        if status is JobStatus.INTERRUPTED and not self.stop_requested.is_set():
            return interrupt_and_retry(self.store, job.id, fields)
        self.store.set_status(job.id, status, **fields)
        return False
