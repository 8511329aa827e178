"""The sweep half of ``TrainingManager``'s Python API (a mixin, so the manager stays small).

Example::

    with TrainingManager.open(max_concurrent=2) as manager:
        sweep_id = manager.start_sweep(
            SweepSpec(dataset="kicks", trials=4, vary={"seed": None, "learning_rate": [1e-3, 3e-3]})
        )
        summary = manager.wait_sweep(sweep_id)
        print(summary.sweep.best_model)
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from smalltrain.engine.context import CancelMode
from smalltrain.engine.jobs import TrainingJob
from smalltrain.service.live import EventHub
from smalltrain.service.sweeps.spec import (
    SweepSpec,
    SweepSummary,
    all_ended,
    plan_sweep,
    store_sweep,
    sweep_summary,
)
from smalltrain.service.sweeps.watch import finalize_sweep, stop_trials
from smalltrain.store.datasets import DatasetStore
from smalltrain.store.db import JobStore
from smalltrain.store.models import ModelStore
from smalltrain.store.sweeps import SweepRecord, SweepStore

__all__ = ["SweepMethods"]


class SweepMethods:
    """Sweep methods for a manager that has ``jobs``, ``models``, ``datasets``, ``home``,
    ``hub``, ``cancel`` and ``_kick``."""

    jobs: JobStore
    models: ModelStore
    datasets: DatasetStore
    home: Path
    hub: EventHub

    def _kick(self) -> None:
        raise NotImplementedError

    def cancel(
        self, job_id: str, mode: CancelMode = "graceful", reason: str = "cancelled by user"
    ) -> TrainingJob:
        raise NotImplementedError

    def start_sweep(self, spec: SweepSpec | None = None, /, **kwargs: Any) -> str:
        """Plan every trial, queue them all, and return the sweep's id.

        Args:
            spec: a ``SweepSpec``, or None with its fields as keyword arguments.

        Raises:
            DatasetNotFound, DatasetError, ConfigError, InvalidName, TrainingError: before
            anything is queued.
        """
        if spec is None:
            spec = SweepSpec(**kwargs)
        elif kwargs:
            spec = dataclasses.replace(spec, **kwargs)
        record, trials = plan_sweep(spec, self.datasets, self.models, self.home)
        store_sweep(self.jobs, record, trials)
        self._kick()
        return record.id

    def get_sweep(self, sweep_id: str) -> SweepSummary:
        """The sweep (id or 4+ character prefix) with its trials and their curves.

        Raises:
            JobNotFound: no such sweep.
        """
        return sweep_summary(self.jobs, sweep_id)

    def list_sweeps(self, limit: int | None = 50) -> list[SweepRecord]:
        """Sweeps, newest first."""
        return SweepStore(self.jobs).newest(limit)

    def wait_sweep(self, sweep_id: str, timeout: float | None = None) -> SweepSummary:
        """Block until the sweep is COMPLETED or FAILED; return its summary.

        Raises:
            TimeoutError: it is still going after ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.05
        while True:
            summary = sweep_summary(self.jobs, sweep_id)
            if summary.finished:
                return summary
            if summary.sweep.status == "RUNNING" and all_ended([t.job for t in summary.trials]):
                # Normally the scheduler's process does this as the last trial ends.
                finalize_sweep(self.jobs, self.models, summary.sweep.id)
                continue
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"sweep {summary.sweep.id} is still running after {timeout} s")
            self.hub.wait_change(delay)
            delay = min(delay * 1.5, 0.5)

    def cancel_sweep(self, sweep_id: str, reason: str = "sweep cancelled by user") -> int:
        """Cancel every queued or running trial (running ones checkpoint); return how many.

        The sweep then registers the best of the trials that completed.
        """
        sweep = SweepStore(self.jobs).get(sweep_id)
        return stop_trials(self.jobs, sweep.id, self._cancel_graceful, reason)

    def finish_sweep(self, sweep_id: str) -> SweepSummary:
        """Close a sweep now with the trials that completed (e.g. when an interrupted trial
        will not be resumed): register the best of them."""
        sweep = SweepStore(self.jobs).get(sweep_id)
        finalize_sweep(self.jobs, self.models, sweep.id, force=True)
        return sweep_summary(self.jobs, sweep.id)

    def _cancel_graceful(self, job_id: str, reason: str) -> None:
        self.cancel(job_id, "graceful", reason)
