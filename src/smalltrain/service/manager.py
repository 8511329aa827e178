"""``TrainingManager``: queue training jobs, run them in the background, register the models.

The original API (``TrainingManager(model_store, dataset_store)``, ``start_training``,
``list_models``, ``delete_model``, ``set_active_model``) plus cancel, resume, wait, live
events and a scheduler per home. The database is the hub: this manager may enqueue a job that
another process's scheduler runs, and follow it from here.

The manager holds its parts rather than inheriting them: its model and sweep methods are
one-line calls into ``model_queries`` (``service.model_queries.ModelQueries``) and ``sweeps``
(``service.sweeps.api.Sweeps``), so each method's body is in the module its part names.

Sync API on ``TrainingManager``; the async flavour is ``AsyncTrainingManager(manager)`` (in
``service.aio``), whose methods run in worker threads and never block the event loop.

Example::

    with TrainingManager.open() as manager:
        job_id = manager.start_training(JobSpec(dataset="kicks", overrides={"epochs": 5}))
        for event in manager.subscribe(job_id):
            print(event.type)
        job = manager.wait(job_id)
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from smalltrain import paths
from smalltrain.engine.context import CancelMode
from smalltrain.engine.events import Event
from smalltrain.engine.jobs import ACTIVE, RESUMABLE, TERMINAL, JobStatus, TrainingJob
from smalltrain.errors import (
    DiskFull,
    InvalidTransition,
    ModelExists,
    NotResumable,
    SchedulerBusy,
    StoreError,
)
from smalltrain.service.execution.attempt import AttemptOutcome, register_extra_tasks
from smalltrain.service.execution.executors import Executor, make_executor
from smalltrain.service.jobspec import Origin
from smalltrain.service.live import EventHub, Subscription, follow_events
from smalltrain.service.model_queries import ModelQueries
from smalltrain.service.planning import JobSpec, as_spec, check_model_name, plan_job
from smalltrain.service.recovery import (
    Unrecorded,
    clean_run_dir,
    record_unrecorded,
    recover_orphans,
)
from smalltrain.service.registration import refuse_registered, register_model
from smalltrain.service.resuming import refuse_config_failure, resume_point_for, run_dir_of
from smalltrain.service.scheduler import Scheduler, scheduler_running
from smalltrain.service.sweeps.api import Sweeps
from smalltrain.service.sweeps.spec import SweepSummary
from smalltrain.service.sweeps.watch import hold_trial_result
from smalltrain.service.wakeup import wake
from smalltrain.store.datasets import DatasetStore
from smalltrain.store.db import JobStore
from smalltrain.store.models import ModelInfo, ModelStore

__all__ = ["JobSpec", "Planner", "TrainingManager"]

#: Plans a job elsewhere (the web UI: in a child process, which inspects the dataset so that
#: the server does not): ``planner(spec, origin)`` must return what ``plan_job`` returns.
Planner = Callable[[JobSpec, Origin], TrainingJob]

#: Seconds ``resume`` and ``cancel`` wait for a dead owner's training process to finish its
#: last checkpoint before it is killed.
ORPHAN_WAIT_S = 15.0


def _close_at_exit(ref: weakref.ref[TrainingManager]) -> None:
    manager = ref()
    if manager is not None:
        manager.close()


class TrainingManager:
    """Queues training jobs of one home, runs them in the background, registers the models.

    Its parts: ``jobs`` (``JobStore``), ``models`` (``ModelStore``), ``datasets``
    (``DatasetStore``), ``model_queries`` (models by name, delete with promotion), ``sweeps``
    (``Sweeps``) and the scheduler it starts.

    Args:
        model_store: where finished models are registered.
        dataset_store: the registered datasets (its ``job_store`` is used when none is given).
        job_store: the jobs database.
        home: the smalltrain home (``runs/``, ``cache/``, the scheduler lock); by default the
            folder of the jobs database.
        executor: "process" (default: a child process per job), "thread", "inline", or an
            ``Executor``.
        max_concurrent: jobs run at once by this manager's scheduler.
        grace_s: seconds a cancelled job may take to checkpoint before its process is killed
            (more when its steps are slow: see ``ProcessExecutor``). 30 s fits a real save of
            a YOLO checkpoint with optimizer state on a slow disk.
        resource_monitor: a ``ResourceMonitor``; queued jobs wait while it reports constrained,
            and running jobs get a "resources" warning event when it becomes constrained.
        resource_check_s: how often running jobs' resources are checked for those warnings.
        autostart: start a background scheduler in this process when a job is queued, unless
            another process already runs one for this home.
    """

    def __init__(
        self,
        model_store: ModelStore,
        dataset_store: DatasetStore,
        *,
        job_store: JobStore | None = None,
        home: str | os.PathLike[str] | None = None,
        executor: str | Executor = "process",
        max_concurrent: int = 1,
        grace_s: float = 30.0,
        resource_monitor: Any = None,
        resource_check_s: float = 5.0,
        autostart: bool = True,
    ) -> None:
        register_extra_tasks()
        self.models = model_store
        self.datasets = dataset_store
        self.jobs = job_store if job_store is not None else dataset_store.job_store
        # By default the home is where the jobs database lives.
        self.home = paths.home(home if home is not None else self.jobs.path.parent)
        self.executor = make_executor(executor, grace_s=grace_s)
        self.max_concurrent = max_concurrent
        self.grace_s = grace_s
        self.resource_monitor = resource_monitor
        self.resource_check_s = resource_check_s
        self.autostart = autostart
        self.hub = EventHub()
        self.model_queries = ModelQueries(self.models)
        self.sweeps = Sweeps(
            self.jobs,
            self.models,
            self.datasets,
            self.home,
            self.hub,
            kick=self._kick,
            cancel=self._cancel_graceful,
        )
        self._owned: list[JobStore] = []
        self._scheduler: Scheduler | None = None
        # Final states this process's scheduler could not write (a full disk): kept here, shown
        # by get_job/wait, and written as soon as the database takes them.
        self._unrecorded: dict[str, Unrecorded] = {}
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # At interpreter exit, cancel running jobs (they checkpoint) before multiprocessing
        # joins the children, which would otherwise wait for the whole training.
        atexit.register(_close_at_exit, weakref.ref(self))

    @classmethod
    def open(cls, home: str | os.PathLike[str] | None = None, **kwargs: Any) -> TrainingManager:
        """Build the stores under ``home`` (``$SMALLTRAIN_HOME`` by default) and a manager."""
        root = paths.home(home)
        job_store = JobStore(paths.db_path(root))
        manager = cls(
            ModelStore(paths.models_dir(root)),
            DatasetStore(job_store, cache_root=paths.cache_dir(root)),
            job_store=job_store,
            home=root,
            **kwargs,
        )
        manager._owned.append(job_store)
        return manager

    # -- starting jobs ------------------------------------------------------------------------

    def start_training(
        self,
        spec: Any = None,
        /,
        *,
        origin: Origin = "local",
        planner: Planner | None = None,
        **kwargs: Any,
    ) -> str:
        """Validate the dataset, choose a config, and queue a job; return its id.

        Every face starts jobs here (the CLI, the Python API, the web UI, the HTTP API), so
        each rule holds for all: the plan (``planning.plan_job``: dataset checks, the weights
        rule, free space), then the model name, reserved in the same database transaction as
        the insert, so that of any number of concurrent starts with one name (from any
        process) exactly one is queued.

        Args:
            spec: a ``JobSpec``, a dataset name or path, a task config object (an audio
                ``TrainingConfig`` with ``dataset_name``, as the original API took), or None
                with ``JobSpec`` fields as keyword arguments.
            origin: "local" (a user at this machine) or "remote" (the web UI and the HTTP API:
                weights by registered name only, no run folder; see ``service.jobspec``).
            planner: where ``plan_job`` runs when not here (the web UI's child process).

        Raises:
            DatasetNotFound, DatasetError: before anything is queued.
            ConfigError: an override or config value is invalid, or breaks the weights rule.
            WeightsNotFound: the weights named are not on disk.
            InvalidName, ModelExists: the model name cannot be used (taken by a registered
                model, or reserved by a queued or running job).
        """
        spec = as_spec(spec, kwargs)
        if planner is not None:
            job = planner(spec, origin)
        else:
            job = plan_job(spec, self.datasets, self.models, self.home, origin=origin)
        try:
            self.jobs.insert_job(job, check_name=lambda: check_model_name(self.models, job))
        except ModelExists:
            if spec.model_name or job.config.get("model_name"):
                raise  # a name the user chose is never changed behind their back
            job.model_name = f"{job.model_name}-{job.id[:6]}"  # two auto names in one second
            self.jobs.insert_job(job, check_name=lambda: check_model_name(self.models, job))
        self._kick()
        return job.id

    def enqueue(self, job: TrainingJob) -> str:
        """Queue a job already planned by ``planning.plan_job`` (a sweep's trials); return its
        id. Its model name is reserved as ``start_training`` does (``ModelExists`` if taken).
        """
        self.jobs.insert_job(job, check_name=lambda: check_model_name(self.models, job))
        self._kick()
        return job.id

    # -- controlling jobs ---------------------------------------------------------------------

    def cancel(
        self, job_id: str, mode: CancelMode = "graceful", reason: str = "cancelled by user"
    ) -> TrainingJob:
        """Cancel a job: a queued one at once; a running one checkpoints and stops.

        ``mode="immediate"`` stops a running job as soon as possible (its process is killed
        after at most a second or two). After ``grace_s`` a process that ignores the request is
        killed either way.

        Raises:
            JobNotFound, InvalidTransition (the job already ended).
        """
        self._recover(wait_s=ORPHAN_WAIT_S)
        job = self.get_job(job_id)
        scheduler = self._scheduler
        # This process's own job stops at once, even when the database cannot take the request.
        local = scheduler is not None and scheduler.cancel_local(job.id, mode, reason)
        try:
            job = self.jobs.request_cancel(job.id, mode, reason)
        except (StoreError, DiskFull, InvalidTransition):
            if not local:
                raise
            job = self.get_job(job.id)
        self.hub.notify()
        return job

    def _cancel_graceful(self, job_id: str, reason: str) -> None:
        self.cancel(job_id, "graceful", reason)

    def resume(self, job_id: str) -> str:
        """Queue a new attempt of a CANCELLED, INTERRUPTED or FAILED job from where its task
        says it resumes (``Task.resume_point``); return the job id.

        A job whose owner died is settled first (its training process may take up to
        ``ORPHAN_WAIT_S`` to write its last checkpoint), so a job left TRAINING by a killed
        ``smalltrain train`` resumes at once. A checkpoint without a sidecar is used only
        when no verified one exists, and the job's reason says so.

        A job that ran but stopped before its first checkpoint starts again from the beginning.

        Raises:
            NotResumable: the job is running or completed, its model is already registered, it
                failed on its config (edit and retry instead), it never ran, or its task has
                nothing to resume from; the message says what to do instead.
        """
        self._recover(wait_s=ORPHAN_WAIT_S)
        job = self.get_job(job_id)
        refuse_config_failure(job, self.home)  # the same config would fail the same way
        if job.status in RESUMABLE:
            refuse_registered(self.models, job)
            clean_run_dir(run_dir_of(job, self.home))  # nobody writes it now: the job has ended
        try:
            point = resume_point_for(job, self.home)  # the task says where, and whether
            resume_from: str | None = str(point.path)
            reason = point.description or f"resuming from {point.path.name}"
        except NotResumable:
            if job.status not in RESUMABLE or not job.attempts:
                raise
            # it ran but stopped before its first checkpoint: nothing to lose by starting over
            resume_from = None
            reason = "no checkpoint was written before it stopped: starting again from the start"
        self.jobs.set_status(
            job.id,
            JobStatus.QUEUED,
            resume_from=resume_from,
            status_reason=reason,
            error=None,
            error_traceback=None,
        )
        self._kick()
        return job.id

    def _recover(self, wait_s: float = 0.0) -> None:
        """Settle jobs whose owner died (see ``service.recovery``) and write final states this
        process could not record earlier. A process running the scheduler recovers there."""
        record_unrecorded(self.jobs, self._unrecorded)
        if self._scheduler is None:
            recover_orphans(self.jobs, self.home, self.models, wait_s=wait_s)

    def get_job(self, job_id: str) -> TrainingJob:
        """The job with this id (or a unique prefix of 4+ characters). Raises JobNotFound.

        A job that looks active while its owner is gone is settled first (INTERRUPTED, or
        COMPLETED when its model is registered), so what comes back is never a dead job
        posing as a live one.
        """
        job = self.jobs.get_job(job_id)
        if job.status in ACTIVE:
            self._recover()
            job = self.jobs.get_job(job.id)
            if job.status in ACTIVE and job.id in self._unrecorded:
                return self._unrecorded[job.id].job
        return job

    def list_jobs(self, **filters: Any) -> list[TrainingJob]:
        """Jobs newest first; filters: ``status``, ``dataset``, ``task``, ``limit``, ``offset``.

        Jobs whose owner died are settled first, as in ``get_job``.
        """
        jobs = self.jobs.list_jobs(**filters)
        if any(j.status in ACTIVE for j in jobs):
            self._recover()
            jobs = self.jobs.list_jobs(**filters)
            shown = {k: u.job for k, u in self._unrecorded.items()}
            jobs = [shown.get(j.id, j) if j.status in ACTIVE else j for j in jobs]
        return jobs

    def wait(self, job_id: str, timeout: float | None = None) -> TrainingJob:
        """Block until the job ends (COMPLETED, CANCELLED, FAILED or INTERRUPTED); return it.

        Wakes on local job changes at once; jobs run by another process are polled with
        back-off up to 0.5 s.

        Raises:
            TimeoutError: the job is still going after ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.02
        while True:
            job = self.get_job(job_id)
            if job.status in TERMINAL:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {job.id} is still {job.status} after {timeout} s")
            left = delay if deadline is None else min(delay, max(deadline - time.monotonic(), 0))
            self.hub.wait_change(left)
            delay = min(delay * 1.5, 0.5)

    def subscribe(self, job_id: str, after_id: int = 0) -> Subscription:
        """Iterate a job's events as they happen, ending when the job ends.

        Live from this process's scheduler; otherwise (another process runs the job) events
        are followed from the database, from event id ``after_id`` on. Use as a context
        manager or call ``close()``.
        """
        job = self.get_job(job_id)
        return Subscription(
            self.jobs,
            self.hub,
            job.id,
            after_id,
            live=lambda: self.runs_scheduler,
            ended=self._ended,
        )

    def _ended(self, job_id: str) -> bool:
        """Whether a job has ended, settling it first if its owner died."""
        return self.get_job(job_id).status in TERMINAL

    def follow(
        self, job_id: str, after_id: int = 0, *, timeout: float | None = None
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """Yield ``(event id, event dict)`` of a job from the database, from any process,
        polling with back-off, until the job has ended and every event was read.

        Dicts are ``Event.to_dict()`` forms plus the store's ``status_change`` records.
        """
        job = self.get_job(job_id)
        return follow_events(
            self.jobs, job.id, after_id, self.hub, timeout=timeout, ended=self._ended
        )

    def _register(self, job: TrainingJob, outcome: AttemptOutcome) -> dict[str, Any]:
        """Scheduler hook: register a finished job's model; return its final fields."""
        job = self.jobs.get_job(job.id)
        if job.sweep_id:  # a sweep registers only its best trial, once all have ended
            return hold_trial_result(job, outcome)
        return register_model(self.models, job, outcome)

    def _publish(self, job_id: str, event: Event | None) -> None:
        """Scheduler hook: live subscribers first, then the sweeps (early stop, the best)."""
        self.hub.publish(job_id, event)
        self.sweeps.watch(job_id, event)

    # -- models and sweeps (the public API; the work is in ``model_queries`` and ``sweeps``) ---

    def list_models(self, dataset: str | None = None) -> list[ModelInfo]:
        """Registered models of one dataset, or of all."""
        return self.models.list(dataset)

    def get_model(self, name: str, dataset: str | None = None) -> ModelInfo:
        """One registered model; ``dataset`` may be omitted when the name is unique."""
        return self.model_queries.find(name, dataset)

    def delete_model(self, name: str, dataset: str | None = None) -> bool:
        """Delete a registered model; when it was the active one, the best remaining model on
        the task's metric becomes active (``ModelQueries.delete_and_promote``)."""
        return self.model_queries.delete_and_promote(name, dataset).deleted

    def set_active_model(self, name: str, dataset: str | None = None) -> ModelInfo:
        """Mark a model as its dataset's active model; return it."""
        return self.model_queries.set_active(name, dataset)

    def jobs_using_model(self, model: ModelInfo) -> list[TrainingJob]:
        """Queued or running jobs that load ``model``'s files (their ``base_model`` is inside
        its folder, as ``train --continue`` and fine-tuning from it give): deleting it makes
        them fail. Every face warns with this before a delete."""
        folder = Path(model.path).resolve()
        waiting = [JobStatus.QUEUED, *ACTIVE]
        found = []
        for job in self.jobs.list_jobs(status=waiting, limit=None):
            base = (job.config or {}).get("base_model")
            if not isinstance(base, str) or not Path(base).is_absolute():
                continue  # a name of the weights folder, a .yaml, or none
            if Path(base).resolve().is_relative_to(folder):
                found.append(job)
        return found

    def get_active_model(self, dataset: str) -> ModelInfo | None:
        """The active model of ``dataset``, or None."""
        return self.models.get_active(dataset)

    def start_sweep(self, spec: Any = None, /, **kwargs: Any) -> str:
        """Plan and queue a sweep's trials; return its id (``Sweeps.start``)."""
        return self.sweeps.start(spec, **kwargs)

    def get_sweep(self, sweep_id: str) -> SweepSummary:
        """A sweep with its trials and their curves (``Sweeps.get``)."""
        return self.sweeps.get(sweep_id)

    def wait_sweep(self, sweep_id: str, timeout: float | None = None) -> SweepSummary:
        """Block until the sweep has ended; return its summary (``Sweeps.wait``)."""
        return self.sweeps.wait(sweep_id, timeout)

    def cancel_sweep(self, sweep_id: str, reason: str = "sweep cancelled by user") -> int:
        """Cancel a sweep's queued and running trials; return how many (``Sweeps.cancel``)."""
        return self.sweeps.cancel(sweep_id, reason)

    # -- the scheduler ------------------------------------------------------------------------

    def _new_scheduler(self, stop_after: Iterable[str] | None = None) -> Scheduler:
        return Scheduler(
            self.jobs,
            self.home,
            self.executor,
            self._register,
            self._publish,
            max_concurrent=self.max_concurrent,
            resource_monitor=self.resource_monitor,
            alert_every_s=self.resource_check_s,
            stop_after=set(stop_after) if stop_after is not None else None,
            models=self.models,
            unrecorded=self._unrecorded,
        )

    def start_scheduler(self, stop_after: Iterable[str] | None = None) -> bool:
        """Run this home's scheduler on a background thread of this process.

        Args:
            stop_after: job ids; the scheduler returns once they have all finished (it runs
                queued jobs ahead of them first, FIFO). None: run until ``close()``.

        Returns:
            True if this process now runs it (or already did); False if another process does.
        """
        with self._lock:
            if self._scheduler is not None:
                return True
            scheduler = self._new_scheduler(stop_after)
            try:
                scheduler.acquire()
            except SchedulerBusy:
                return False
            self.warm_up()
            self._scheduler = scheduler
            self._thread = threading.Thread(
                target=self._run_background, args=(scheduler,), name="smalltrain-scheduler"
            )
            self._thread.daemon = True
            self._thread.start()
            return True

    def _run_background(self, scheduler: Scheduler) -> None:
        try:
            scheduler.run()
        finally:
            with self._lock:
                if self._scheduler is scheduler:
                    self._scheduler = None

    def run_scheduler(self, until_idle: bool = True) -> None:
        """Run this home's scheduler in the calling thread (``smalltrain worker``).

        Raises:
            SchedulerBusy: another process runs it.
        """
        scheduler = self._new_scheduler()
        scheduler.acquire()
        self.warm_up()
        with self._lock:
            self._scheduler = scheduler
        try:
            scheduler.run(until_idle=until_idle)
        finally:
            with self._lock:
                self._scheduler = None

    def warm_up(self) -> None:
        """Have the executor's job processes ready to start (the process executor's warm
        start: its server loads torch and the tasks in the background; see
        ``execution.warm``). Called where this process runs the scheduler, and by a face
        early, before it plans a job that this process will run."""
        start_method = getattr(self.executor, "start_method", None)
        if callable(start_method):
            start_method()

    def stop_scheduler(self) -> None:
        """Stop this process's scheduler: running jobs are cancelled (they checkpoint)."""
        with self._lock:
            scheduler, thread = self._scheduler, self._thread
        if scheduler is not None:
            scheduler.stop()
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        with self._lock:
            if self._scheduler is scheduler:
                self._scheduler = None
            if self._thread is thread:
                self._thread = None

    def scheduler_info(self) -> dict[str, Any] | None:
        """Who runs this home's scheduler ({"pid", "host", "since"}), or None if nobody."""
        if self._scheduler is not None:
            return {"pid": os.getpid(), "here": True}
        return scheduler_running(self.home)

    @property
    def runs_scheduler(self) -> bool:
        """Whether this process runs the home's scheduler."""
        return self._scheduler is not None

    def _kick(self) -> None:
        if self._scheduler is None and self.autostart:
            self.start_scheduler()
        if self._scheduler is not None:
            self._scheduler.wake.set()
        else:  # a worker's, in another process: it would look in up to a second by itself
            wake(self.home)

    def close(self) -> None:
        """Stop the scheduler (running jobs checkpoint and end CANCELLED) and close stores."""
        self.stop_scheduler()
        for store in self._owned:
            store.close()
        self._owned.clear()

    def __enter__(self) -> TrainingManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
