"""The scheduler: one per home, it claims queued jobs and runs each through an executor.

- **One per home.** ``run`` takes ``home/scheduler.lock`` with ``locks.try_lock``; a second
  scheduler gets ``SchedulerBusy`` naming the holder.
- **Recovery.** On start, and every few seconds after, ``recovery.settle`` settles jobs a dead
  scheduler left active: COMPLETED when their model is already registered, INTERRUPTED
  (resumable) once their process is gone, or back to QUEUED when it never started. A child
  orphaned by a dead scheduler checkpoints and exits by itself (see ``attempt``), so its job
  is settled as soon as it is gone. Clients settle such jobs too (``recovery.recover_orphans``),
  taking the lock for a moment; a scheduler starting then waits for them.
- **Faults.** A store that refuses a write (a full disk) never kills the loop or leaves a
  job looking alive: a final state that cannot be written is kept in ``unrecorded`` (the
  manager shows it and writes it later), and a foreground run whose job cannot even start
  ends with the reason.
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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smalltrain import paths
from smalltrain.engine.context import CancelMode, CancelToken, ResourceLimits, cancel_mode
from smalltrain.engine.events import (
    WarningEvent,
)
from smalltrain.engine.fsutil import SpaceReserve, disk_full_error, is_disk_full
from smalltrain.engine.jobs import ACTIVE, JobStatus, TrainingJob
from smalltrain.engine.locks import HolderLock, pid_alive, read_holder
from smalltrain.errors import STORE_REFUSED, SchedulerBusy, SmallTrainError
from smalltrain.service.execution.attempt import (
    AttemptOutcome,
    AttemptSpec,
    error_line,
    reason_of,
)
from smalltrain.service.execution.executors import Executor
from smalltrain.service.execution.placement import Placement
from smalltrain.service.execution.sink import JobEventSink, Publish
from smalltrain.service.execution.threads import thread_budget
from smalltrain.service.recovery import (
    Unrecorded,
    clean_run_dir,
    final_state,
    scheduler_running,
    settle,
    take_lock,
)
from smalltrain.service.report import write_metrics_plot
from smalltrain.service.resuming import current_resume_point
from smalltrain.service.retry import interrupt_and_retry
from smalltrain.service.wakeup import WakeListener
from smalltrain.store.db import JobStore
from smalltrain.store.models import ModelStore

__all__ = ["Scheduler", "Unrecorded", "lock_path", "scheduler_running"]

log = logging.getLogger(__name__)

OnFinished = Callable[[TrainingJob, AttemptOutcome], dict[str, Any]]


def lock_path(home: Path) -> Path:
    """The lock file that makes one scheduler per home."""
    return paths.scheduler_lock_path(Path(home))


def _log_failure(job_id: str, what: str, exc: Exception) -> None:
    """One line for an expected error (it is in the job's record); a traceback for a bug."""
    if isinstance(exc, SmallTrainError):
        log.info("job %s %s: %s", job_id, what, exc)
    else:
        log.exception("job %s %s", job_id, what)


@dataclass
class _Running:
    """A job this scheduler is running."""

    job: TrainingJob
    token: CancelToken
    thread: threading.Thread | None = None
    sink: JobEventSink | None = None
    spec: AttemptSpec | None = None
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
        models: the model registry; recovery completes a job whose model it already holds.
        unrecorded: where to keep final job states the store refused to write.
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
        models: ModelStore | None = None,
        unrecorded: dict[str, Unrecorded] | None = None,
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
        self.models = models
        self.unrecorded: dict[str, Unrecorded] = unrecorded if unrecorded is not None else {}
        self._store_trouble: str | None = None
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
        self._listener = WakeListener(self.home, self.wake.set)  # another process queued a job
        self._reserve = SpaceReserve(paths.space_reserve_path(self.home))

    # -- the loop ---------------------------------------------------------------------------

    def acquire(self) -> None:
        """Take the home's scheduler lock (``run`` does it if not done yet).

        Raises:
            SchedulerBusy: another scheduler holds this home.
        """
        if self._home_lock is not None:
            return
        # (a client settling orphaned jobs holds the lock for a moment: waited for)
        self._home_lock = take_lock(lock_path(self.home), role="scheduler")
        if self._home_lock is None:
            holder = read_holder(lock_path(self.home)) or {}
            raise SchedulerBusy(
                f"another scheduler (pid {holder.get('pid', '?')} on {holder.get('host', '?')}) "
                f"already runs the jobs of {self.home}; jobs you queue will run there"
            )
        self._listener.start()

    def run(self, until_idle: bool = False) -> None:
        """Run until ``stop()`` (or, with ``until_idle``, until nothing is queued or running).

        Raises:
            SchedulerBusy: another scheduler holds this home.
        """
        self.acquire()
        while True:
            try:
                self._reserve.ensure()
                self._loop(until_idle)
            finally:
                self._shutdown()
                self._listener.close()
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
        self._guarded(lambda: self._recover(force=True))
        while not self.stop_requested.is_set():
            if not self._guarded(self._tick) and self._give_up_targets():
                break
            if until_idle and self._guarded(self._idle):
                break
            if self._done_with_targets() and not self.running:
                break
            self.wake.wait(self.poll_s if self.running else self.idle_poll_s)
            self.wake.clear()

    def _guarded(self, step: Callable[[], Any]) -> Any:
        """Run one step of the loop; a store error (a full disk) is logged once, not raised.

        Returns the step's result, or False when the store refused."""
        try:
            result = step()
        except STORE_REFUSED as exc:
            if str(exc) != self._store_trouble:
                log.warning("the job database refused a write: %s", exc)
            self._store_trouble = str(exc)
            return False
        self._store_trouble = None
        return result if result is not None else True

    def _give_up_targets(self) -> bool:
        """A foreground run whose job cannot even be started (the store refuses every write):
        end it with the store's reason instead of waiting forever. True when given up."""
        if self.stop_after is None or self.running or self._store_trouble is None:
            return False
        for job_id in self.stop_after - self.finished:
            with contextlib.suppress(SmallTrainError):
                job = self.store.get_job(job_id)
                reason = f"it could not be started: {self._store_trouble}"
                fields = {"status_reason": reason, "error": reason}
                self.unrecorded[job_id] = final_state(job, JobStatus.FAILED, fields)
            self.finished.add(job_id)
            self.publish(job_id, None)
        return True

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
        close = getattr(self.executor, "close", None)  # the process executor's spare child
        if callable(close):
            close()

    # -- recovery and cancel ----------------------------------------------------------------

    def _recover(self, force: bool = False) -> None:
        """Settle jobs a dead scheduler left active. On start (``force``), children of a dead
        scheduler may finish their cancel checkpoint (``orphan_wait_s``) before they are killed:
        resuming their job while they still write the run folder would race with them."""
        now = time.monotonic()
        if not force and now - self._recovered_at < self.recover_every_s:
            return
        self._recovered_at = now
        settle(
            self.store,
            self.models,
            wait_s=self.orphan_wait_s if force else 0.0,
            kill=force,
            alive=pid_alive,
            skip=set(self.running),
        )

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
            clean_run_dir(run.spec.run_dir)  # partial writes of a killed attempt
            self.store.update_job(job.id, run_dir=str(run.spec.run_dir))
            resume = str(run.spec.resume_from) if run.spec.resume_from else None
            # The attempt is recorded before any other recovery pass can see the job.
            run.attempt = self.store.history.start_attempt(job.id, os.getpid(), resume)
        except Exception as exc:
            _log_failure(job.id, "could not start", exc)
            self._record(job, JobStatus.FAILED, {"status_reason": str(exc), "error": str(exc)})
            self.finished.add(job.id)
            self.publish(job.id, None)
            return
        run.sink = JobEventSink(self.store, job.id, self.publish)
        run.thread = threading.Thread(
            target=self._attend, args=(run,), name=f"smalltrain-job-{job.id}", daemon=True
        )
        with self._lock:
            self.running[job.id] = run
        run.thread.start()

    def _reap(self) -> None:
        with self._lock:
            done = [k for k, r in self.running.items() if r.thread and not r.thread.is_alive()]
            for job_id in done:
                del self.running[job_id]

    def _spec(self, job: TrainingJob) -> AttemptSpec:
        run_dir = Path(job.run_dir or paths.run_dir(self.home, job.id))
        resume = Path(job.resume_from) if job.resume_from else None
        if resume is not None and not resume.is_file():  # gone since: ask the task again
            resume = current_resume_point(job, run_dir)
        gpu_cap = job.config.get("max_gpu_memory_percent")
        placement = Placement.from_dict(job.placement)
        # Jobs that share this machine share its cores (see service.threads): the jobs that will
        # run at once are those running, this one and those queued, up to max_concurrent (a
        # lone job under max_concurrent 8 gets every core, not an eighth).
        threads = placement.num_cpus or job.config.get("cpu_threads")
        if not threads:
            at_once = len(self.running) + 1 + self.store.count_jobs(JobStatus.QUEUED)
            threads = thread_budget(min(self.max_concurrent, at_once))
        return AttemptSpec(
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

    def _attend(self, run: _Running) -> None:
        """Run one claimed job to its end in this thread: its attempts, then its settlement."""
        job = run.job
        try:
            assert run.sink is not None
            assert run.spec is not None
            outcome = self.executor.execute(run.spec, run.sink, run.token)
            run.sink.flush()
        except Exception as exc:  # a bug or a store error: the job must still end
            if is_disk_full(exc) and run.spec is not None:  # e.g. the pid file, in the run dir
                exc = disk_full_error(run.spec.run_dir, None, exc, what="files in")
            _log_failure(job.id, "could not run", exc)
            outcome = AttemptOutcome("failed", error=error_line(exc))
        retried = False
        try:
            retried = self._finish(job, run, outcome)
        except Exception:  # never leave the job looking alive, nor print a thread traceback
            log.exception("job %s: could not record how it ended", job.id)
        finally:
            if not retried:  # a retried job goes on: its followers keep following it
                self.finished.add(job.id)
                self.publish(job.id, None)
            self.wake.set()

    def _finish(self, job: TrainingJob, run: _Running, outcome: AttemptOutcome) -> bool:
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
                _log_failure(job.id, "could not register its model", exc)
                status = JobStatus.FAILED
                why = error_line(exc)
                error = f"training finished but the model could not be registered: {why}"
                outcome = AttemptOutcome(
                    "failed", result=outcome.result, exit_code=outcome.exit_code, error=error
                )
        if outcome.status == "cancelled":
            fields["status_reason"] = outcome.error or run.token.reason or "cancelled"
        elif outcome.status == "failed":
            fields.update(
                status_reason=reason_of(outcome.error),
                error=outcome.error,
                error_traceback=outcome.traceback,
            )
        elif outcome.status == "interrupted":
            fields["status_reason"] = outcome.error
        # Before the attempt is closed: a closed attempt of an active job reads as "process gone"
        # to the recovery pass, so nothing slow may run between the two writes below.
        write_metrics_plot(self.store, self.store.get_job(job.id), self.home)
        with contextlib.suppress(*STORE_REFUSED):  # the job's status below matters more
            self.store.history.finish_attempt(
                job.id, run.attempt, outcome.status, outcome.exit_code, outcome.error
            )
        if status is JobStatus.INTERRUPTED and not self.stop_requested.is_set():
            return interrupt_and_retry(self.store, job.id, fields)
        self._record(job, status, fields)
        return False

    def _record(self, job: TrainingJob, status: JobStatus, fields: dict[str, Any]) -> None:
        """Write a job's final state; if the store refuses twice (a full disk even after its
        log was truncated), keep it in ``unrecorded`` for the manager to show and write later."""
        for attempt in (1, 2):
            try:
                self.store.set_status(job.id, status, **fields)
                self.unrecorded.pop(job.id, None)
                return
            except STORE_REFUSED as exc:
                if attempt == 1 and self._reserve.release():
                    log.info("job %s: released the home's space reserve to record it", job.id)
                if attempt == 2:
                    log.warning("job %s ended %s, but the database refused it: %s",
                                job.id, status, exc)  # fmt: skip
                    note = f" (not yet saved in the job database: {exc})"
                    self.unrecorded[job.id] = final_state(job, status, fields, note)
