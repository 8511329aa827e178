"""``JobEventSink``: records one running job's events in the store, in batches.

Every non-step event is stored at once. Step metrics are buffered and written every
``flush_s`` seconds or ``flush_rows`` rows (one transaction each), together with the newest
step event of the batch (so followers in other processes see live progress without one row per
step) and the job's progress fields. The first step after a (re)start is written at once: the
user waits for it (issue 26: it waited up to ``flush_s`` for the next step before).
A crash can lose at most one unflushed batch of step rows.
A write the store refuses (a full disk) drops the event with one warning; training goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from smalltrain.engine.eventlog import EVENTS_FILE, epochs_before
from smalltrain.engine.events import (
    CheckpointSaved,
    EpochMetrics,
    Event,
    StepMetrics,
    TrainingStarted,
)
from smalltrain.engine.jobs import JobStatus
from smalltrain.errors import STORE_REFUSED
from smalltrain.store.db import JobStore, MetricRow

__all__ = ["JobEventSink", "Publish"]

Publish = Callable[[str, Event | None], None]

log = logging.getLogger(__name__)


class JobEventSink:
    """Receives one job's events from an executor and records them (thread-safe)."""

    def __init__(
        self,
        store: JobStore,
        job_id: str,
        publish: Publish,
        *,
        flush_s: float = 0.5,
        flush_rows: int = 200,
    ) -> None:
        self.store = store
        self.job_id = job_id
        self.publish = publish
        self.flush_s = flush_s
        self.flush_rows = flush_rows
        self.total_steps: int | None = None
        self._rows: list[MetricRow] = []
        self._last_step: StepMetrics | None = None
        self._flushed_at = time.monotonic()
        self._first_step = True  # not yet written since the attempt started
        self._lock = threading.Lock()
        self._refused: str | None = None

    def __call__(self, event: Event) -> None:
        with self._lock:
            try:
                if isinstance(event, StepMetrics):
                    self._on_step(event)
                else:
                    self._on_other(event)
            except STORE_REFUSED as exc:
                # A full disk must not stop training: the event is lost, not the job (its
                # checkpoints, on another disk maybe, decide whether it can go on).
                self._rows = []
                if str(exc) != self._refused:
                    log.warning("job %s: events are not being recorded: %s", self.job_id, exc)
                self._refused = str(exc)
        self.publish(self.job_id, event)

    def _on_step(self, event: StepMetrics) -> None:
        self._rows += [
            ("step", event.epoch, event.global_step, k, v) for k, v in event.metrics.items()
        ]
        self._last_step = event
        due = time.monotonic() - self._flushed_at >= self.flush_s or self._first_step
        self._first_step = False
        if due or len(self._rows) >= self.flush_rows:
            self._flush()

    def _on_other(self, event: Event) -> None:
        self._flush()
        fields: dict[str, Any] = {}
        if isinstance(event, TrainingStarted):
            self._first_step = True
            self._on_started(event)
        elif isinstance(event, EpochMetrics):
            rows = [("epoch", event.epoch, event.epoch, k, v) for k, v in event.metrics.items()]
            self.store.history.append_metrics(self.job_id, rows)
            fields = {"epoch": event.epoch + 1, "last_metrics": dict(event.metrics)}
        elif isinstance(event, CheckpointSaved):
            fields = {"checkpoint_path": event.path}
        self.store.history.append_events(self.job_id, [event.to_dict()])
        if fields:
            self.store.update_job(self.job_id, **fields)

    def _on_started(self, event: TrainingStarted) -> None:
        spe = event.steps_per_epoch
        self.total_steps = spe * event.total_epochs or None
        start = event.start_epoch * spe + event.start_step
        # The curves continue from where this attempt starts (its checkpoint, or the very start
        # when an earlier attempt died before its first checkpoint): drop rows a lost attempt
        # wrote after that point, and take back from the run's own log the epochs before it
        # that a dead parent never stored.
        self.store.history.truncate_metrics(self.job_id, start - 1, event.start_epoch)
        self._backfill(event.start_epoch)
        self.store.update_job(
            self.job_id,
            total_epochs=event.total_epochs,
            total_steps=self.total_steps,
            epoch=event.start_epoch,
            step=start,
            device=event.device,
        )
        job = self.store.get_job(self.job_id)
        if job.status is JobStatus.STARTING:
            self.store.set_status(self.job_id, JobStatus.TRAINING, status_reason=None)

    def _backfill(self, start_epoch: int) -> None:
        run_dir = self.store.get_job(self.job_id).run_dir
        if not start_epoch or not run_dir:
            return
        have = self.store.history.metric_epochs(self.job_id)
        logged = epochs_before(Path(run_dir) / EVENTS_FILE, start_epoch)
        lost = [e for n, e in sorted(logged.items()) if n not in have]
        if lost:
            rows = [("epoch", e.epoch, e.epoch, k, v) for e in lost for k, v in e.metrics.items()]
            self.store.history.append_metrics(self.job_id, rows)
            self.store.history.append_events(self.job_id, [e.to_dict() for e in lost])

    def flush(self) -> None:
        """Write buffered step metrics, one step event and the job's progress (rows the store
        refuses are dropped)."""
        with self._lock:
            try:
                self._flush()
            except STORE_REFUSED as exc:
                log.warning("job %s: last metrics not recorded: %s", self.job_id, exc)

    def _flush(self) -> None:
        self._flushed_at = time.monotonic()
        step, self._last_step = self._last_step, None
        if not self._rows or step is None:
            return
        rows, self._rows = self._rows, []
        self.store.history.append_metrics(self.job_id, rows)
        self.store.history.append_events(self.job_id, [step.to_dict()])
        done = step.global_step + 1
        progress = min(done / self.total_steps, 1.0) if self.total_steps else 0.0
        self.store.update_job(
            self.job_id,
            step=done,
            epoch=step.epoch,
            progress=progress,
            last_metrics=dict(step.metrics),
        )
