"""Sweeps: several trials of one dataset over seeds and chosen fields, the best registered.

On small data the spread between seeds is about the size of the gains presets chase, so a
sweep is worth running on one machine as well as on a cluster.

- ``SweepSpec`` says what varies: ``vary={"seed": None, "lr0": [0.0005, 0.001]}`` gives each
  trial its own seed and cycles ``lr0`` through the listed values (the grid of every listed
  field, repeated up to ``trials``).
- ``plan_sweep`` validates every trial's config before anything is queued; ``start_sweep``
  stores the sweep and its trials (ordinary jobs carrying the sweep's id) in one transaction
  and wakes the scheduler. Trials then run like any job: on local processes, as many at once
  as the scheduler's ``max_concurrent`` (each with its share of the cores), or on Ray.
- While trials run, ``watch.SweepWatcher`` stops weak ones early (ASHA, on the task's
  validation metric: ``val/sc`` for audio, ``val/mAP50-95`` for detection) and, once every
  trial has ended, registers the best and prunes the others' run folders if asked.
- ``sweep_summary`` gives the trials side by side with their curves (``smalltrain sweep show``).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smalltrain import tasks
from smalltrain.engine.config import check
from smalltrain.engine.jobs import TERMINAL, JobStatus, TrainingJob
from smalltrain.engine.plain import plain
from smalltrain.errors import ConfigError, TrainingError
from smalltrain.service.planning import JobSpec, plan_job, resolve_dataset
from smalltrain.service.sweeps.asha import Asha
from smalltrain.store.datasets import DatasetStore
from smalltrain.store.db import JobStore
from smalltrain.store.models import ModelStore
from smalltrain.store.names import validate_name
from smalltrain.store.sweeps import SweepRecord, SweepStore

__all__ = [
    "SweepSpec",
    "SweepSummary",
    "TrialRow",
    "parse_vary",
    "plan_sweep",
    "sweep_metric",
    "sweep_summary",
    "trial_settings",
]


@dataclass(frozen=True)
class SweepSpec:
    """What a sweep trains and varies. Everything but ``dataset`` has a default.

    Args:
        dataset: a registered dataset name or a path.
        trials: how many trials; None: one per setting of the grid of listed values.
        vary: field → values to cycle through; a field with None (only ``seed``) gives each
            trial its own value (the base seed plus the trial's number).
        task, preset, overrides, device, priority: as in ``JobSpec``, for every trial.
        metric, mode: the validation metric trials are judged by and whether lower ("min") or
            higher ("max") is better; by default the task's (``val/sc``/min for audio,
            ``val/mAP50-95``/max for detection).
        early_stop: stop weak trials early with ASHA.
        grace_epochs, reduction_factor: ASHA's grace period and reduction factor.
        model_name: the name to register the best trial under (default: its own name).
        activate: make the best trial's model the dataset's active model.
        prune: delete the run folders of the other trials once the best is registered (their
            records and curves stay in the database).
    """

    dataset: str | os.PathLike[str]
    trials: int | None = None
    vary: Mapping[str, Sequence[Any] | None] = field(default_factory=dict)
    task: str | None = None
    preset: str = "auto"
    overrides: Mapping[str, Any] = field(default_factory=dict)
    device: str | None = None
    priority: int = 0
    metric: str | None = None
    mode: str | None = None
    early_stop: bool = True
    grace_epochs: int = 1
    reduction_factor: int = 2
    model_name: str | None = None
    activate: bool = False
    prune: bool = False


def parse_vary(items: Sequence[str]) -> dict[str, list[str] | None]:
    """``["seed", "lr0=0.0005,0.001"]`` (the CLI's ``--vary``) → ``{"seed": None, "lr0": [...]}``.

    Raises:
        ConfigError: an empty field name, or ``field=`` without values.
    """
    out: dict[str, list[str] | None] = {}
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip()
        check("--vary", item, bool(name), "must be FIELD or FIELD=v1,v2,... e.g. --vary seed")
        listed = [v.strip() for v in values.split(",") if v.strip()]
        check("--vary", item, not sep or bool(listed), "lists no values after '='")
        out[name] = listed if sep else None
    return out


def trial_settings(
    vary: Mapping[str, Sequence[Any] | None], trials: int | None, base_seed: int = 0
) -> list[dict[str, Any]]:
    """Each trial's overrides: the grid of listed values, cycled; distinct seeds if asked.

    Raises:
        ConfigError: a field other than ``seed`` has no values; fewer than 1 trial; more
            trials than distinct settings while seeds do not vary.
    """
    own_seed = "seed" in vary and vary["seed"] is None
    for name, values in vary.items():
        if values is None and name != "seed":
            raise ConfigError(name, None, f"list its values: --vary {name}=v1,v2")
    listed = [name for name, values in vary.items() if values is not None]
    grid = list(itertools.product(*(list(vary[name] or ()) for name in listed)))
    count = len(grid) if trials is None else trials
    check("trials", count, count >= 1, "must be >= 1")
    if count > len(grid) and not own_seed:
        raise ConfigError(
            "trials",
            count,
            f"only {len(grid)} distinct setting(s) to try; add --vary seed so that repeated "
            "settings differ, or ask for fewer trials",
        )
    out = []
    for i in range(count):
        setting = dict(zip(listed, grid[i % len(grid)], strict=True))
        if own_seed:
            setting["seed"] = base_seed + i
        out.append(setting)
    return out


def sweep_metric(task_name: str, metric: str | None, mode: str | None) -> tuple[str, str]:
    """The metric and mode a sweep judges trials by: given, or the task's ``sweep_metric``.

    Raises:
        ConfigError: no metric given and the task names none, or a bad mode.
    """
    default = getattr(tasks.get_task(task_name), "sweep_metric", None)
    if metric is None:
        if default is None:
            raise ConfigError("metric", None, f"the {task_name} task names no validation "
                              "metric; give one, e.g. --metric val/loss --mode min")  # fmt: skip
        metric, default_mode = default
    else:
        default_mode = default[1] if default and default[0] == metric else "min"
    mode = mode or default_mode
    check("mode", mode, mode in ("min", "max"), "must be 'min' or 'max'")
    return metric, mode


def plan_sweep(
    spec: SweepSpec, datasets: DatasetStore, models: ModelStore, home: Path
) -> tuple[SweepRecord, list[TrainingJob]]:
    """Validate every trial and return the sweep and its jobs, ready to store.

    Raises:
        DatasetNotFound, DatasetError, ConfigError, InvalidName, TrainingError: before
        anything is queued.
    """
    sweep_id = uuid.uuid4().hex[:12]
    dataset, path, kind, _ = resolve_dataset(
        JobSpec(dataset=spec.dataset, task=spec.task), datasets
    )
    task_name = spec.task or kind
    try:
        task = tasks.get_task(task_name)
    except KeyError as exc:
        raise TrainingError(str(exc.args[0])) from None
    metric, mode = sweep_metric(task_name, spec.metric, spec.mode)
    report = task.inspect(path)  # once for every trial
    if spec.model_name:
        validate_name(spec.model_name, "model name")
    base_seed = int(spec.overrides.get("seed", 0) or 0)
    settings = trial_settings(spec.vary, spec.trials, base_seed)
    stamp = time.strftime("%Y%m%d-%H%M%S")

    def plan(fixed: Mapping[str, Any]) -> list[TrainingJob]:
        jobs = []
        for n, setting in enumerate(settings, start=1):
            job_spec = JobSpec(
                dataset=spec.dataset,
                task=task_name,
                preset=spec.preset,
                overrides={**spec.overrides, **fixed, **setting},
                device=spec.device,
                priority=spec.priority,
            )
            job = plan_job(job_spec, datasets, models, home, report=report)
            job.model_name = f"{task_name}-sweep-{stamp}-t{n}"
            job.sweep_id = sweep_id
            job.artifacts = {**job.artifacts, "trial": n, "setting": plain(setting)}
            jobs.append(job)
        return jobs

    jobs = plan({})
    if "split_seed" in jobs[0].config and not {"split_seed"} & {*spec.overrides, *spec.vary}:
        # A task whose validation split follows the seed (audio): every trial is judged on
        # the same validation files, whatever its own seed.
        jobs = plan({"split_seed": base_seed})
    epochs = max(int(j.config.get("epochs", 1) or 1) for j in jobs)
    Asha(epochs, mode, spec.grace_epochs, spec.reduction_factor)  # validates the ASHA settings
    record = SweepRecord(
        id=sweep_id,
        task=task_name,
        metric=metric,
        mode=mode,
        dataset=dataset,
        spec={
            "trials": len(jobs),
            "vary": {k: (None if v is None else plain(list(v))) for k, v in spec.vary.items()},
            "overrides": plain(dict(spec.overrides)),
            "preset": spec.preset,
            "early_stop": spec.early_stop,
            "grace_epochs": spec.grace_epochs,
            "reduction_factor": spec.reduction_factor,
            "max_epochs": epochs,
            "model_name": spec.model_name,
            "activate": spec.activate,
            "prune": spec.prune,
        },
    )
    return record, jobs


def store_sweep(jobs: JobStore, record: SweepRecord, trials: Sequence[TrainingJob]) -> None:
    """Store the sweep and its trials in one transaction."""
    if not trials:
        raise TrainingError("a sweep needs at least one trial")
    SweepStore(jobs).insert(record, trials)


# --- reading a sweep -----------------------------------------------------------------------


@dataclass(frozen=True)
class TrialRow:
    """One trial as ``sweep show`` lists it."""

    n: int
    job: TrainingJob
    setting: Mapping[str, Any]
    curve: list[tuple[int, float]]  # (epoch, metric)
    best: float | None
    stopped_early: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "trial": self.n,
            "job_id": self.job.id,
            "status": self.job.status.value,
            "status_reason": self.job.status_reason,
            "setting": dict(self.setting),
            "epochs": self.job.epoch,
            "best": self.best,
            "curve": [list(p) for p in self.curve],
            "stopped_early": self.stopped_early,
            "model": self.job.artifacts.get("model"),
            "pruned": bool(self.job.artifacts.get("pruned")),
        }


@dataclass(frozen=True)
class SweepSummary:
    """A sweep's record and its trials (with their curves of the sweep's metric)."""

    sweep: SweepRecord
    trials: list[TrialRow]

    @property
    def finished(self) -> bool:
        return self.sweep.status in ("COMPLETED", "FAILED")

    @property
    def epochs_run(self) -> int:
        """Epochs trained by every trial together (what early stopping saves shows here)."""
        return sum(len(t.curve) for t in self.trials)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.sweep.to_dict(),
            "epochs_run": self.epochs_run,
            "trials": [t.to_dict() for t in self.trials],
        }


def best_of(values: Sequence[float], mode: str) -> float | None:
    """The best of ``values`` for ``mode`` ("min"/"max"), or None if there are none."""
    if not values:
        return None
    return min(values) if mode == "min" else max(values)


def sweep_summary(jobs: JobStore, sweep_id: str) -> SweepSummary:
    """The sweep ``sweep_id`` (or a 4+ character prefix) with its trials and curves.

    Raises:
        JobNotFound: no such sweep.
    """
    store = SweepStore(jobs)
    sweep = store.get(sweep_id)
    curves: dict[str, dict[int, float]] = {}
    for report in store.epoch_reports(sweep.id, sweep.metric):
        # A resumed trial reports some epochs again: the newest report of an epoch wins.
        curves.setdefault(report.job_id, {})[report.epoch] = report.value
    rows = []
    for n, job in enumerate(store.trials(sweep.id), start=1):
        curve = sorted(curves.get(job.id, {}).items())
        # A stop that came too late (the trial finished first) does not count.
        stopped = job.artifacts.get("early_stopped") if job.status is JobStatus.CANCELLED else None
        rows.append(
            TrialRow(
                n=int(job.artifacts.get("trial", n)),
                job=job,
                setting=dict(job.artifacts.get("setting") or {}),
                curve=curve,
                best=best_of([v for _, v in curve], sweep.mode),
                stopped_early=str(stopped) if stopped else None,
            )
        )
    return SweepSummary(sweep, rows)


def all_ended(trials: Sequence[TrainingJob]) -> bool:
    """Whether every trial has ended and none waits to be resumed (INTERRUPTED)."""
    return all(t.status in TERMINAL and t.status is not JobStatus.INTERRUPTED for t in trials)


def replace_name(job: TrainingJob, name: str | None) -> TrainingJob:
    """A copy of ``job`` that registers under ``name`` (unchanged when None)."""
    return dataclasses.replace(job, model_name=name) if name else job
