"""Sweeps while they run: stop weak trials early, then register the best one.

``SweepWatcher`` is called with every event of every job the home's scheduler runs (the
manager chains it behind the live event hub), wherever the job runs (a local process or Ray):

- on a trial's ``EpochMetrics`` it applies ASHA (``service.asha``) to the sweep's stored
  reports; a trial to stop gets a graceful cancel (it checkpoints, like any cancel) whose
  reason says why, and ``artifacts["early_stopped"]`` records it;
- when a trial's attempt ends and every trial of its sweep has ended, ``finalize_sweep``
  registers the best completed trial (by its best value of the metric), optionally makes it
  active and prunes the others' run folders, and closes the sweep. One process does it: the
  sweep row moves RUNNING → FINALIZING in a transaction first.

A completed trial registers no model by itself (``hold_trial_result`` keeps its result in the
job's artifacts); only the sweep's best is registered.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from smalltrain.engine.events import EpochMetrics, Event
from smalltrain.engine.jobs import ACTIVE, JobStatus, TrainingJob
from smalltrain.errors import InvalidTransition, JobNotFound, TrainingError
from smalltrain.service.execution.attempt import AttemptOutcome, result_from_dict, result_to_dict
from smalltrain.service.registration import register_model
from smalltrain.service.sweeps.asha import Asha
from smalltrain.service.sweeps.spec import all_ended, replace_name, sweep_summary
from smalltrain.store.db import JobStore
from smalltrain.store.models import ModelStore
from smalltrain.store.sweeps import SweepRecord, SweepStore

__all__ = ["SweepWatcher", "finalize_sweep", "hold_trial_result", "stop_trials"]

log = logging.getLogger(__name__)

#: ``stop(job_id, reason)``: cancel a running trial gracefully.
StopTrial = Callable[[str, str], Any]


def hold_trial_result(job: TrainingJob, outcome: AttemptOutcome) -> dict[str, Any]:
    """A completed trial's final fields: its result kept for the sweep, no model registered.

    Raises:
        TrainingError: the trial finished without a weights file.
    """
    result = outcome.result
    if result is None or result.weights is None or not Path(result.weights).is_file():
        raise TrainingError(f"trial {job.id} finished without a weights file to register")
    kept = {k: v for k, v in result_to_dict(result).items() if k != "extra"}
    kept = json.loads(json.dumps(kept, default=str))  # plain JSON for the artifacts column
    return {
        "artifacts": {**job.artifacts, "trial_result": kept},
        "status_reason": f"trial of sweep {job.sweep_id} completed; the sweep registers its best",
    }


class SweepWatcher:
    """Applies early stopping and finalization to the sweeps of one home (thread-safe: every
    decision is read from and written to the database).

    Args:
        jobs: the home's job store.
        models: the home's model store (the best trial is registered there).
        stop: cancels a running trial with a reason (the manager's graceful cancel).
    """

    def __init__(self, jobs: JobStore, models: ModelStore, stop: StopTrial) -> None:
        self.jobs = jobs
        self.models = models
        self.sweeps = SweepStore(jobs)
        self.stop = stop
        self._sweep_of: dict[str, str | None] = {}

    def __call__(self, job_id: str, event: Event | None) -> None:
        """The scheduler's publish hook: never raises (a sweep must not break a job)."""
        if event is not None and not isinstance(event, EpochMetrics):
            return
        try:
            sweep_id = self._sweep_id(job_id)
            if sweep_id is None:
                return
            if event is None:
                self._ended(sweep_id)
            else:
                self._epoch(sweep_id, job_id)
        except Exception:
            log.exception("sweep bookkeeping failed for job %s", job_id)

    def _sweep_id(self, job_id: str) -> str | None:
        if job_id not in self._sweep_of:
            try:
                self._sweep_of[job_id] = self.jobs.get_job(job_id).sweep_id
            except JobNotFound:
                return None
        return self._sweep_of[job_id]

    def _epoch(self, sweep_id: str, job_id: str) -> None:
        sweep = self.sweeps.get(sweep_id)
        if sweep.status != "RUNNING" or not sweep.spec.get("early_stop", True):
            return
        rule = Asha(
            int(sweep.spec.get("max_epochs", 1)),
            sweep.mode,
            int(sweep.spec.get("grace_epochs", 1)),
            int(sweep.spec.get("reduction_factor", 2)),
        )
        stop = rule.decide(self.sweeps.epoch_reports(sweep.id, sweep.metric), job_id)
        if stop is None:
            return
        job = self.jobs.get_job(job_id)
        if job.status not in ACTIVE or job.artifacts.get("early_stopped"):
            return
        reason = stop.reason(sweep.metric)
        self.jobs.update_job(job_id, artifacts={**job.artifacts, "early_stopped": reason})
        with contextlib.suppress(InvalidTransition):  # it ended meanwhile
            self.stop(job_id, reason)

    def _ended(self, sweep_id: str) -> None:
        if all_ended(self.sweeps.trials(sweep_id)):
            finalize_sweep(self.jobs, self.models, sweep_id)


def stop_trials(jobs: JobStore, sweep_id: str, stop: StopTrial, reason: str) -> int:
    """Cancel every queued or running trial of a sweep; return how many."""
    count = 0
    for job in SweepStore(jobs).trials(sweep_id):
        if job.status in ACTIVE or job.status is JobStatus.QUEUED:
            try:
                stop(job.id, reason)
                count += 1
            except InvalidTransition:
                continue
    return count


def finalize_sweep(
    jobs: JobStore, models: ModelStore, sweep_id: str, *, force: bool = False
) -> SweepRecord | None:
    """Register the best completed trial and close the sweep; None if another process does
    it, it is already closed, or (without ``force``) some trial has not ended."""
    store = SweepStore(jobs)
    if not force and not all_ended(store.trials(sweep_id)):
        return None
    if not store.claim_finalize(sweep_id):
        return None
    try:
        _register_best(jobs, models, store, sweep_id)
    except Exception as exc:
        log.exception("sweep %s: registering the best trial failed", sweep_id)
        store.update(sweep_id, status="FAILED", status_reason=str(exc), finished_at=time.time())
    return store.get(sweep_id)


def _register_best(jobs: JobStore, models: ModelStore, store: SweepStore, sweep_id: str) -> None:
    summary = sweep_summary(jobs, sweep_id)
    sweep = summary.sweep
    ranked = [
        t
        for t in summary.trials
        if t.job.status is JobStatus.COMPLETED and t.best is not None
        if t.job.artifacts.get("trial_result")
    ]
    if not ranked:
        store.update(
            sweep_id,
            status="FAILED",
            status_reason=f"no trial completed with a {sweep.metric}; nothing was registered "
            f"(see smalltrain sweep show {sweep_id})",
            finished_at=time.time(),
        )
        return
    pick = min if sweep.mode == "min" else max
    best = pick(ranked, key=lambda t: float(t.best))  # type: ignore[arg-type]
    result = result_from_dict(best.job.artifacts["trial_result"])
    job = replace_name(best.job, sweep.spec.get("model_name"))
    fields = register_model(models, job, AttemptOutcome("completed", result=result))
    name = str(fields["model_name"])
    if sweep.spec.get("activate"):
        models.set_active(sweep.dataset or job.dataset or "", name)
    jobs.update_job(best.job.id, **fields)
    if sweep.spec.get("prune"):
        _prune([t.job for t in summary.trials if t.job.id != best.job.id], jobs)
    store.update(
        sweep_id,
        status="COMPLETED",
        best_job_id=best.job.id,
        best_model=name,
        status_reason=f"best: trial {best.n} ({sweep.metric} {best.best:.4g}), registered as "
        f"{name!r} for dataset {sweep.dataset!r}",
        finished_at=time.time(),
    )


def _prune(others: list[TrainingJob], jobs: JobStore) -> None:
    """Delete the run folders of trials that were not the best (records and curves stay)."""
    for job in others:
        if not job.run_dir or job.status not in (JobStatus.COMPLETED, JobStatus.CANCELLED,
                                                 JobStatus.FAILED):  # fmt: skip
            continue
        shutil.rmtree(job.run_dir, ignore_errors=True)
        jobs.update_job(job.id, artifacts={**job.artifacts, "pruned": True}, checkpoint_path=None)
