"""``Backend``: what the web UI and the HTTP API do, in one place, over ``TrainingManager``
and the stores.

The server process only reads the store, queues jobs and sends cancel and resume requests;
planning a job (which inspects the dataset), config validation and every "use" action run in
child processes (``pool``). The home's scheduler runs on a thread here (training itself in its
own child process per job), unless a ``smalltrain worker`` already runs it; then jobs are
followed through the store like any other client.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smalltrain.engine.context import CancelMode
from smalltrain.engine.jobs import ACTIVE, JobStatus, TrainingJob
from smalltrain.engine.seen import SEEN_DIR, listed_files, read_seen
from smalltrain.service.detection_results import ModelResults, model_results, results_file
from smalltrain.service.execution.executors import (
    Executor,
    InlineExecutor,
    ProcessExecutor,
    ThreadExecutor,
)
from smalltrain.service.jobspec import JobSpec, Origin
from smalltrain.service.manager import TrainingManager
from smalltrain.service.scheduler import scheduler_running
from smalltrain.service.weights import WeightsEntry, WeightsStore
from smalltrain.store.models import ModelInfo
from smalltrain.ui.child import calls
from smalltrain.ui.child.actions import UseUI, contained
from smalltrain.ui.child.pool import ChildPool
from smalltrain.ui.env import UIPaths
from smalltrain.ui.viewmodels.datasets import DatasetsUI
from smalltrain.ui.viewmodels.jobs import (
    JobView,
    charts_for,
    fill_events,
    fill_speed,
    job_view,
    last_log_event,
)
from smalltrain.ui.viewmodels.resources import ResourceSampler
from smalltrain.ui.viewmodels.settings import SettingsStore

#: The audio task's previews manifest (``tasks/audio/use/preview.py``; not imported: it loads
#: torch).
PREVIEW_INFO = "previews.json"

__all__ = ["Backend", "ModelRow", "where_jobs_run"]

log = logging.getLogger(__name__)


#: Seconds between two re-reads of a training job's curves (the progress bar is not throttled).
CHART_EVERY_S = 2.0


def _chart_key(job: TrainingJob) -> tuple[Any, ...]:
    return (job.step, job.epoch, job.status)


def where_jobs_run(executor: Executor) -> str:
    """Where this server's scheduler runs its jobs, in words (the page header, /api/health)."""
    if isinstance(executor, ProcessExecutor):
        return "jobs run in child processes of this server"
    if isinstance(executor, ThreadExecutor):
        return "jobs run in threads of this server"
    if isinstance(executor, InlineExecutor):
        return "jobs run in this server's scheduler thread, one at a time"
    if type(executor).__name__ == "RayExecutor":  # not imported here: it would load ray
        address = getattr(executor, "address", None) or "$RAY_ADDRESS"
        return f"jobs run on the Ray cluster at {address}"
    return f"jobs run through {type(executor).__name__}"


@dataclass
class _CachedView:
    view: JobView
    log_id: int
    chart_key: tuple[Any, ...]
    charts_at: float


@dataclass
class ModelRow:
    """A registered model as the Models view lists it."""

    info: ModelInfo
    changed: str  # why the dataset no longer matches the model, or ""

    def to_dict(self) -> dict[str, Any]:
        return {**self.info.to_dict(), "dataset_changed": self.changed}


class Backend:
    """The UI's and the API's view of one smalltrain home.

    Args:
        home: the smalltrain home.
        max_concurrent: jobs the scheduler runs at once (when it runs here).
        run_scheduler: start the home's scheduler in this process (unless a worker has it).
        pool: the child processes for heavy work (a new ``ChildPool`` by default).
        job_nice: the scheduling priority (``nice``) given to the processes of the jobs this
            server runs, so the page answers at once while they train; a job alone on the
            machine trains as fast as ever. 0 leaves them as they start.
        executor: where the jobs run: "process" here, or a ``RayExecutor`` (``--ray``).
    """

    def __init__(
        self,
        home: Path,
        *,
        max_concurrent: int = 1,
        run_scheduler: bool = True,
        pool: ChildPool | None = None,
        job_nice: int = 10,
        executor: str | Executor = "process",
    ) -> None:
        self.ui = UIPaths(home).make()
        self.job_nice = job_nice
        self.manager = TrainingManager.open(
            home, max_concurrent=max_concurrent, autostart=run_scheduler, executor=executor
        )
        self.home = self.manager.home
        self.pool = pool or ChildPool()
        self.datasets = DatasetsUI(self.manager.datasets, self.ui, self.pool)
        self.use = UseUI(self.manager.models, self.ui, self.pool)
        self.settings = SettingsStore(self.ui.settings)
        self.weights = WeightsStore(self.home)
        self.resources = ResourceSampler(lambda: self.pool.call(calls.gpus), self._running_pid)
        self._views: dict[str, _CachedView] = {}
        self.validate_calls = 0  # detection results computed by this server (Validate button)
        self._views_lock = threading.Lock()
        self._stop = threading.Event()
        self.closing = False  # event streams end when set
        self.runs_scheduler = run_scheduler and self.manager.start_scheduler()
        self._keeper: threading.Thread | None = None
        if run_scheduler:
            self._keeper = threading.Thread(
                target=self._keep_scheduler, name="ui-keeper", daemon=True
            )
            self._keeper.start()

    # -- the scheduler --------------------------------------------------------------------------

    def scheduler_note(self) -> str:
        """Who runs this home's jobs, in words."""
        if self.manager.runs_scheduler:
            return where_jobs_run(self.manager.executor)
        holder = scheduler_running(self.home)
        if holder:
            return f"jobs run in the smalltrain worker with pid {holder.get('pid', '?')}"
        return "no scheduler runs this home's jobs"

    def _keep_scheduler(self) -> None:
        """Take the scheduler over when a worker that had it exits with jobs still queued; give
        the jobs this server runs a lower priority than the server (``job_nice``)."""
        while not self._stop.wait(1.0):
            try:
                if self.job_nice and self.manager.runs_scheduler:
                    self._lower_job_priority()
                idle = not self.manager.runs_scheduler and scheduler_running(self.home) is None
                if idle and self.manager.jobs.count_jobs("QUEUED"):
                    self.manager.start_scheduler()
            except Exception:  # never let a transient database error end the keeper
                log.exception("scheduler keeper")

    def _lower_job_priority(self) -> None:
        import psutil

        pid = self._running_pid()
        if pid is None:
            return
        with contextlib.suppress(psutil.Error, OSError):
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                if proc.nice() < self.job_nice:
                    proc.nice(self.job_nice)

    def _running_pid(self) -> int | None:
        for job in self.manager.list_jobs(status=sorted(ACTIVE), limit=1):
            attempts = self.manager.jobs.history.list_attempts(job.id)
            if attempts and attempts[-1].finished_at is None:
                return attempts[-1].pid
        return None

    # -- jobs -----------------------------------------------------------------------------------

    def start(self, spec: JobSpec) -> TrainingJob:
        """Start a job as every face does (``TrainingManager.start_training``: the same rules,
        the model name reserved with the insert), as a remote origin (weights by registered
        name only, no run folder), with the planning (which inspects the dataset) in a child.
        """
        job_id = self.manager.start_training(spec, origin="remote", planner=self._plan)
        return self.manager.get_job(job_id)

    def _plan(self, spec: JobSpec, origin: Origin) -> TrainingJob:
        """``planning.plan_job`` in a child process: one round trip."""
        return TrainingJob.from_dict(
            self.pool.call(calls.plan, str(self.home), spec.to_dict(), origin)
        )

    def start_job(
        self,
        dataset: str,
        config: dict[str, Any],
        model_name: str | None = None,
        changes: dict[str, Any] | None = None,
    ) -> TrainingJob:
        """The Train tab's start: the form's config (its preset's) with the form's changes
        (strings converted by type, as ``--set`` does)."""
        spec = JobSpec(
            dataset=dataset, config=dict(config), overrides=changes or {}, model_name=model_name
        )
        return self.start(spec)

    def start_from_spec(self, spec: dict[str, Any]) -> TrainingJob:
        """The API's start: ``JobSpec`` fields as JSON (``JobSpec.from_dict`` checks them).

        Without ``config``, the task's preset (``auto`` by default) for the dataset with
        ``overrides`` applied is used, as ``smalltrain train DATASET --set ...`` does.
        """
        return self.start(JobSpec.from_dict(spec))

    def cancel(self, job_id: str, mode: CancelMode = "graceful") -> TrainingJob:
        """Stop a job (``graceful``: checkpoint first; ``immediate``: now)."""
        return self.manager.cancel(job_id, mode, reason=f"stopped from the web UI ({mode})")

    def resume(self, job_id: str) -> TrainingJob:
        """Queue a new attempt from the newest valid checkpoint."""
        return self.manager.get_job(self.manager.resume(job_id))

    def view(self, job_id: str) -> JobView:
        """What the job view shows, shared by every open page and re-read by parts: the job's
        row each call; warnings, previews and log when a non-step event arrived; the curves
        when new metrics arrived, at most every ``CHART_EVERY_S`` while it trains (every poll
        of every page would otherwise re-read them)."""
        job = self.manager.get_job(job_id)
        store = self.manager.jobs
        with self._views_lock:
            cached = self._views.get(job.id)
        if cached is None:
            view = job_view(store, job)
            cached = _CachedView(
                view, last_log_event(store, job.id), _chart_key(job), time.monotonic()
            )
            with self._views_lock:
                if len(self._views) > 64:
                    self._views.clear()
                self._views[job.id] = cached
            return view
        view = cached.view
        changed = job.updated_at != view.job.updated_at or job.status is not view.job.status
        view.job = job
        if not changed:
            return view
        log_id = last_log_event(store, job.id)
        if log_id != cached.log_id:
            fill_events(store, view)
            cached.log_id = log_id
        key = _chart_key(job)
        due = (
            time.monotonic() - cached.charts_at >= CHART_EVERY_S
            or job.status is not JobStatus.TRAINING
        )
        if key != cached.chart_key and (due or key[1:] != cached.chart_key[1:]):
            view.charts = charts_for(store, job)
            cached.chart_key, cached.charts_at = key, time.monotonic()
        fill_speed(store, view)
        return view

    def newest_job(self) -> TrainingJob | None:
        """The job a fresh page shows: the newest active one, else the newest."""
        active = self.manager.list_jobs(status=sorted(ACTIVE | {JobStatus.QUEUED}), limit=1)
        if active:
            return active[0]
        jobs = self.manager.list_jobs(limit=1)
        return jobs[0] if jobs else None

    def preview_file(self, job_id: str, name: str) -> Path:
        """A job's preview file by name (never outside its previews folder)."""
        job = self.manager.get_job(job_id)
        return contained(Path(job.run_dir or "") / "previews", name)

    def preview_info(self, job_id: str) -> dict[str, Any]:
        """The job's ``previews/previews.json`` (which file the "recon" previews reconstruct,
        and the names of its original); ``{}`` when the run wrote none (older runs)."""
        job = self.manager.get_job(job_id)
        try:
            path = contained(Path(job.run_dir or "") / "previews", PREVIEW_INFO)
            data = json.loads(path.read_text())
        except (FileNotFoundError, OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def seen(self, job_id: str) -> dict[str, Any] | None:
        """The job's ``seen.json`` (what the model sees), or None before it is written."""
        job = self.manager.get_job(job_id)
        return read_seen(Path(job.run_dir)) if job.run_dir else None

    def seen_file(self, job_id: str, name: str) -> Path:
        """A file its ``seen.json`` lists, from the job's ``seen/`` folder only.

        Raises:
            FileNotFoundError: no such job file, or a name the manifest does not list.
        """
        manifest = self.seen(job_id)
        if manifest is None or name not in listed_files(manifest):
            raise FileNotFoundError(f"{name}: no such file")
        job = self.manager.get_job(job_id)
        return contained(Path(job.run_dir or "") / SEEN_DIR, name)

    def job_log(self, job_id: str, lines: int = 400) -> list[str]:
        """A job's event log, oldest first (at most ``lines``), plus its task log's tail."""
        from smalltrain.ui.viewmodels.jobs import LOG_TYPES, describe_event

        job = self.manager.get_job(job_id)
        rows = self.manager.jobs.history.events_of_type(job.id, LOG_TYPES, limit=lines, newest=True)
        out = [describe_event(e) for _, e in rows]
        task_log = Path(job.run_dir or "") / "ultralytics.log"
        if task_log.is_file():
            tail = task_log.read_text(encoding="utf-8", errors="replace").splitlines()[-60:]
            out += ["", f"--- {task_log} (last {len(tail)} lines) ---", *tail]
        return out

    # -- weights --------------------------------------------------------------------------------

    def add_weights(
        self, file: Path, name: str | None = None, source: str | None = None
    ) -> WeightsEntry:
        """Register an uploaded .pt in the weights folder (checked without running it, its
        sha256 recorded), so a detection job can name it as ``base_model``.

        Raises:
            InvalidName, WrongModelKind, ModelExists (a file of that name is registered).
        """
        return self.weights.add(file, name or None, source=source or f"upload {file.name}")

    # -- models ---------------------------------------------------------------------------------

    def model_rows(self, dataset: str) -> list[ModelRow]:
        """The dataset's models, each with a warning when the dataset changed since."""
        record = self.manager.datasets.job_store.get_dataset(dataset)
        current = None
        if record is not None:
            from smalltrain.store.datasets import quick_fingerprint

            current = quick_fingerprint(record.path)
        rows = []
        for info in self.manager.list_models(dataset):
            changed = ""
            if record is not None:
                if info.dataset_fingerprint and info.dataset_fingerprint != record.fingerprint:
                    changed = (
                        f"trained on {info.dataset_snapshot or 'another version'}; the "
                        f"dataset is now {record.snapshot}"
                    )
                elif current != record.quick_fingerprint:
                    changed = "files in the dataset folder changed since it was registered"
            rows.append(ModelRow(info, changed))
        return rows

    def model_results(self, dataset: str, name: str) -> ModelResults:
        """A detection model's results kept in its folder (or why there are none)."""
        return model_results(self.home, f"{dataset}/{name}")

    def results_file(self, dataset: str, name: str, file: str) -> Path:
        """A file the model's results.json lists, nothing else (``service.detection_results``)."""
        return results_file(self.home, f"{dataset}/{name}", file)

    def validate_model(self, dataset: str, name: str) -> ModelResults:
        """Compute a detection model's results again (in a helper process, by the same
        ``validate_detector`` as ``smalltrain val``) and return them."""
        model = f"{dataset}/{name}"
        model_results(self.home, model)  # a detection model, registered: else a clear error
        self.validate_calls += 1
        self.pool.call(calls.validate_model, str(self.home), model)
        return model_results(self.home, model)

    def model_history(
        self, models: list[ModelInfo], key: str
    ) -> list[tuple[str, list[tuple[float, float]]]]:
        """Per-epoch values of ``key`` for each model (from its training job)."""
        out = []
        for m in models:
            points: list[tuple[float, float]] = []
            if m.job_id:
                try:
                    series = self.manager.jobs.history.metric_series(m.job_id, key, "epoch")
                except Exception:
                    series = []
                points = [(e + 1, v) for e, v in series if math.isfinite(v)]
            out.append((m.name, points))
        return out

    def model_metric_keys(self, models: list[ModelInfo]) -> list[str]:
        keys: set[str] = set()
        for m in models:
            if m.job_id:
                keys.update(self.manager.jobs.history.metric_keys(m.job_id, "epoch"))
        return sorted(k for k in keys if not k.startswith(("time/", "lr")))

    # -- lifecycle ------------------------------------------------------------------------------

    def running_jobs(self) -> list[TrainingJob]:
        return self.manager.list_jobs(status=sorted(ACTIVE), limit=None)

    def close(self) -> None:
        """Stop the keeper, the child processes, and this process's scheduler (running jobs
        write a checkpoint and end CANCELLED; a worker's jobs go on)."""
        self.closing = True
        self._stop.set()
        self.resources.stop()
        self.pool.close()
        self.manager.close()
