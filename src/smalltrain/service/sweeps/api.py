"""``Sweeps``: start, follow, cancel and close sweeps of one home (``TrainingManager.sweeps``).

The manager's public ``start_sweep``, ``get_sweep``, ``wait_sweep`` and ``cancel_sweep`` call
it. Example::

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from smalltrain.service.live import EventHub
from smalltrain.service.sweeps.spec import (
    SweepSpec,
    SweepSummary,
    all_ended,
    plan_sweep,
    store_sweep,
    sweep_summary,
)
from smalltrain.service.sweeps.watch import SweepWatcher, finalize_sweep, stop_trials
from smalltrain.store.datasets import DatasetStore
from smalltrain.store.db import JobStore
from smalltrain.store.models import ModelStore
from smalltrain.store.sweeps import SweepRecord, SweepStore

__all__ = ["Sweeps"]


class Sweeps:
    """The sweeps of one home.

    Args:
        jobs, models, datasets, home: the home's stores and folder.
        hub: the manager's live events (waits wake on them).
        kick: wakes the manager's scheduler once trials are queued.
        cancel: cancels one job gracefully, ``cancel(job_id, reason)``.
    """

    def __init__(
        self,
        jobs: JobStore,
        models: ModelStore,
        datasets: DatasetStore,
        home: Path,
        hub: EventHub,
        *,
        kick: Callable[[], None],
        cancel: Callable[[str, str], None],
    ) -> None:
        self.jobs = jobs
        self.models = models
        self.datasets = datasets
        self.home = home
        self.hub = hub
        self._kick = kick
        self._cancel = cancel
        #: Fed every event by the scheduler: stops weak trials, registers the best at the end.
        self.watch = SweepWatcher(jobs, models, cancel)

    def start(self, spec: SweepSpec | None = None, /, **kwargs: Any) -> str:
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

    def get(self, sweep_id: str) -> SweepSummary:
        """The sweep (id or 4+ character prefix) with its trials and their curves.

        Raises:
            JobNotFound: no such sweep.
        """
        return sweep_summary(self.jobs, sweep_id)

    def newest(self, limit: int | None = 50) -> list[SweepRecord]:
        """Sweeps, newest first."""
        return SweepStore(self.jobs).newest(limit)

    def wait(self, sweep_id: str, timeout: float | None = None) -> SweepSummary:
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

    def cancel(self, sweep_id: str, reason: str = "sweep cancelled by user") -> int:
        """Cancel every queued or running trial (running ones checkpoint); return how many.

        The sweep then registers the best of the trials that completed.
        """
        sweep = SweepStore(self.jobs).get(sweep_id)
        return stop_trials(self.jobs, sweep.id, self._cancel, reason)

    def finish(self, sweep_id: str) -> SweepSummary:
        """Close a sweep now with the trials that completed (e.g. when an interrupted trial
        will not be resumed): register the best of them."""
        sweep = SweepStore(self.jobs).get(sweep_id)
        finalize_sweep(self.jobs, self.models, sweep.id, force=True)
        return sweep_summary(self.jobs, sweep.id)
