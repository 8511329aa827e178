"""What the job view shows, read from the store: curves, warnings, previews, log, ETA.

Everything here is plain data (``render`` turns it into HTML). Each task has its own charts;
a task without an entry gets train and validation loss.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smalltrain.engine.jobs import JobStatus, TrainingJob
from smalltrain.store.db import JobStore

__all__ = ["CHARTS", "Chart", "JobView", "Series", "describe_event", "duration_s", "headline",
           "headline_items", "job_view"]  # fmt: skip

#: (title, [(metric key, scope, label)]) per task. Step series are sampled for the chart.
CHARTS: dict[str, list[tuple[str, list[tuple[str, str, str]]]]] = {
    "audio": [
        ("Loss", [("train/loss", "step", "train"), ("val/loss", "epoch", "validation")]),
        (
            "Spectral convergence, model vs PCA (lower is better)",
            [("val/sc", "epoch", "model (val/sc)"), ("pca/sc", "epoch", "PCA (pca/sc)")],
        ),
        ("KL divergence", [("train/kl", "step", "train"), ("val/kl_raw", "epoch", "validation")]),
        ("β, the KL weight", [("kl/beta", "step", "β")]),
    ],
    "detect": [
        (
            "Training losses",
            [
                ("train/box_loss", "step", "box"),
                ("train/cls_loss", "step", "cls"),
                ("train/dfl_loss", "step", "dfl"),
            ],
        ),
        (
            "Validation mAP (higher is better)",
            [("val/mAP50", "epoch", "mAP50"), ("val/mAP50-95", "epoch", "mAP50-95")],
        ),
    ],
}
_DEFAULT_CHARTS = [("Loss", [("train/loss", "step", "train"), ("val/loss", "epoch", "validation")])]
#: Headline metrics for tables, per task.
HEADLINE_KEYS: dict[str, tuple[str, ...]] = {
    "audio": ("val/loss", "val/sc", "pca/sc"),
    "detect": ("val/mAP50", "val/mAP50-95"),
}
LOG_TYPES = (
    "status_change",
    "training_started",
    "epoch",
    "warning",
    "checkpoint",
    "preview",
    "log",
    "training_finished",
)


@dataclass
class Series:
    """One line of a chart."""

    label: str
    points: list[tuple[float, float]]


@dataclass
class Chart:
    """A chart: a title, an x-axis label and its lines."""

    title: str
    x_label: str
    series: list[Series]

    @property
    def empty(self) -> bool:
        return not any(s.points for s in self.series)


@dataclass
class JobView:
    """Everything the job view shows about one job, as stored now."""

    job: TrainingJob
    charts: list[Chart] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    previews: list[tuple[int, list[str]]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    rate: float | None = None  # optimizer steps per second in this attempt
    eta_s: float | None = None


def duration_s(store: JobStore, job: TrainingJob, now: float | None = None) -> float:
    """Time spent running, summed over the job's attempts (a running one counts until now)."""
    now = time.time() if now is None else now
    total = 0.0
    for attempt in store.history.list_attempts(job.id):
        end = attempt.finished_at or (now if job.is_active else attempt.started_at)
        total += max(0.0, end - attempt.started_at)
    return total


def _steps_per_epoch(job: TrainingJob) -> int | None:
    if job.total_steps and job.total_epochs:
        return max(1, job.total_steps // job.total_epochs)
    return None


def _series(
    store: JobStore, job: TrainingJob, key: str, scope: str, label: str, in_steps: bool
) -> Series:
    points = store.history.metric_series_sampled(job.id, key, scope, max_points=300)
    spe = _steps_per_epoch(job)
    out: list[tuple[float, float]] = []
    for x, y in points:
        if not math.isfinite(y):
            continue
        if scope == "epoch":  # epoch e ends at step (e + 1) * steps per epoch
            out.append(((x + 1) * spe if in_steps and spe else x + 1, y))
        else:
            out.append((x + 1, y))
    return Series(label, out)


def charts_for(store: JobStore, job: TrainingJob) -> list[Chart]:
    """The task's charts of this job, with the stored curves."""
    charts = []
    for title, specs in CHARTS.get(job.task, _DEFAULT_CHARTS):
        in_steps = any(scope == "step" for _, scope, _ in specs)
        series = [_series(store, job, k, s, label, in_steps) for k, s, label in specs]
        charts.append(Chart(title, "step" if in_steps else "epoch", series))
    return charts


def describe_event(event: dict[str, Any]) -> str:
    """One log line for a stored event (as ``smalltrain jobs logs`` prints them)."""
    when = dt.datetime.fromtimestamp(float(event.get("time", 0))).strftime("%H:%M:%S")
    kind = str(event.get("type", "?"))
    if kind == "status_change":
        text = f"{event.get('from') or '-'} → {event.get('to')} {event.get('reason') or ''}"
    elif kind in ("step", "epoch"):
        metrics = " ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in dict(event.get("metrics", {})).items()
        )
        text = f"epoch {int(event.get('epoch', 0)) + 1} {metrics}"
    elif kind == "training_started":
        resumed = f", resumed from {event['resumed_from']}" if event.get("resumed_from") else ""
        text = (
            f"{event.get('total_epochs')} epochs × {event.get('steps_per_epoch')} steps on "
            f"{event.get('device')}{resumed}"
        )
    elif kind == "preview":
        text = (
            f"epoch {int(event.get('epoch', 0)) + 1}: {len(event.get('paths', []))} preview file(s)"
        )
    elif kind == "checkpoint":
        text = f"{event.get('reason')} checkpoint {Path(str(event.get('path'))).name}"
    else:
        text = next(
            (str(event[k]) for k in ("message", "status") if k in event),
            json.dumps({k: v for k, v in event.items() if k not in ("type", "time")}),
        )
    return f"{when} {kind:>17}  {text}"


def _speed(store: JobStore, job: TrainingJob, now: float) -> tuple[float | None, float | None]:
    """(steps per second, seconds left) of the running attempt, from its start event."""
    if job.status is not JobStatus.TRAINING or not job.total_steps:
        return None, None
    found = store.history.events_of_type(job.id, ["training_started"], limit=1, newest=True)
    if not found:
        return None, None
    start = found[0][1]
    first = int(start.get("start_epoch", 0)) * int(start.get("steps_per_epoch", 0) or 0)
    done = job.step - first - int(start.get("start_step", 0))
    spent = now - float(start.get("time", now))
    if done <= 0 or spent <= 0:
        return None, None
    rate = done / spent
    return rate, max(0.0, (job.total_steps - job.step) / rate)


#: Warning codes that carry one verdict (tasks/audio/training/alerts.py ``FIT_CODES``): the newest
#: one stands, an older one it replaced (and says so) is not shown beside it.
VERDICT_CODES = frozenset({"overfitting", "underfitting", "fit_recovered"})


def standing_warnings(warnings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Warnings as they arrived, less the fit verdicts a newer one replaced."""
    newest = max((i for i, w in enumerate(warnings) if w.get("code") in VERDICT_CODES), default=-1)
    return [w for i, w in enumerate(warnings) if w.get("code") not in VERDICT_CODES or i == newest]


def fill_events(store: JobStore, view: JobView, log_lines: int = 60) -> None:
    """Warnings, previews and the log of ``view.job`` (newest non-step events only)."""
    job = view.job
    view.warnings = standing_warnings(
        [e for _, e in store.history.events_of_type(job.id, ["warning"], limit=200, newest=True)]
    )
    view.previews = [
        (int(e.get("epoch", 0)) + 1, [Path(p).name for p in e.get("paths", [])])
        for _, e in store.history.events_of_type(job.id, ["preview"], limit=200, newest=True)
    ]
    rows = store.history.events_of_type(job.id, LOG_TYPES, limit=log_lines, newest=True)
    view.log = [describe_event(e) for _, e in rows]


def fill_speed(store: JobStore, view: JobView) -> None:
    """Elapsed time over all attempts, and this attempt's speed and ETA."""
    now = time.time()
    view.elapsed_s = duration_s(store, view.job, now)
    view.rate, view.eta_s = _speed(store, view.job, now)


def job_view(store: JobStore, job: TrainingJob, log_lines: int = 60) -> JobView:
    """Read everything the job view shows about ``job`` from the store."""
    view = JobView(job=job, charts=charts_for(store, job))
    fill_events(store, view, log_lines)
    fill_speed(store, view)
    return view


def last_log_event(store: JobStore, job_id: str) -> int:
    """The id of the job's newest event that is not a step (0 if none): warnings, previews and
    the log change only when it does."""
    rows = store.history.events_of_type(job_id, LOG_TYPES, limit=1, newest=True)
    return rows[0][0] if rows else 0


def headline_items(job: TrainingJob) -> list[tuple[str, float]]:
    """The job's final (or latest) headline metrics as ``[(key, value)]``."""
    keys = HEADLINE_KEYS.get(job.task, ("val/loss",))
    out = []
    for key in keys:
        value = job.last_metrics.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value):
            out.append((key, float(value)))
    return out


def headline(job: TrainingJob) -> str:
    """The job's final (or latest) headline metrics, e.g. ``val/sc 0.245 · pca/sc 0.402``."""
    return " · ".join(f"{key} {value:.4g}" for key, value in headline_items(job))
