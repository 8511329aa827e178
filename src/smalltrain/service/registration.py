"""After a job: its result → a registered model, and the rule that makes a model active.

``register_model`` copies the weights into the ``ModelStore`` with the job link, headline
metric, dataset snapshot, fingerprint and versions. The model folder holds:

- ``config.yaml``: ``task``, ``dataset`` and ``config`` (the job's full config, which
  ``smalltrain train --config`` reads back), plus whatever the task adds (detection:
  ``ultralytics``, Ultralytics' resolved training arguments);
- ``metrics.json``: ``final`` (the result's metrics), ``history`` (one row per epoch) and, where
  the task reports it, ``per_class`` (detection: precision, recall, mAP per class), and
  ``results_missing`` (detection: why the results were not computed);
- ``previews/`` (audio) and ``results/`` (detection: ``tasks.detect.results``), copied from
  the run folder.

**The activation rule** (one rule, README "Jobs, datasets and models"): a new model becomes its
dataset's active model when the dataset has no active model yet, or when it beats the active
model on the metric the task optimises (the headline: ``val/sc`` for audio, lower is better;
``mAP50-95`` for detection, higher is better). Otherwise the active model stays, and the job
record says why and how to activate the new one. The decision is made under the registry's
lock, so two jobs finishing at once cannot both win.

Registration is idempotent per job: a job registers at most one model. When the registry
already holds a model of this job (its scheduler died after registering it, before the job
was marked COMPLETED), that model is returned and nothing is copied again. A model name taken
meanwhile (say, by a job resumed after another took the name) is never silently replaced: the
model gets ``<name>-<job id prefix>`` and the job's reason says so plainly.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from smalltrain.engine.checkpoint_index import package_versions
from smalltrain.engine.context import TrainResult, metric_label, metric_mode
from smalltrain.engine.jobs import TrainingJob
from smalltrain.errors import ModelExists, NotResumable, SmallTrainError, TrainingError
from smalltrain.service.execution.attempt import AttemptOutcome
from smalltrain.service.planning import dataset_name
from smalltrain.store.models import ModelEntry, ModelInfo, ModelStore

__all__ = [
    "activation_rule",
    "best_model",
    "completed_fields",
    "model_files",
    "refuse_registered",
    "register_model",
]


def model_files(job: TrainingJob, result: TrainResult) -> tuple[dict[str, Any], dict[str, Any]]:
    """The contents of a model's ``config.yaml`` and ``metrics.json``."""
    extra = dict(result.extra)
    given = dict(extra.get("config_yaml") or {})
    config = {
        "task": job.task,
        "dataset": job.dataset,
        "dataset_path": job.dataset_path,
        "config": dict(given.pop("config", None) or job.config),
        **given,  # e.g. detection's "ultralytics": its resolved arguments
    }
    reported = dict(extra.get("metrics") or {})
    metrics: dict[str, Any] = {
        "final": dict(reported.get("final") or result.metrics),
        "history": list(reported.get("history") or extra.get("history") or []),
    }
    if reported.get("per_class"):
        metrics["per_class"] = dict(reported["per_class"])
    if extra.get("results_missing"):  # detection: why <model>/results/ was not computed
        metrics["results_missing"] = str(extra["results_missing"])
    return config, metrics


def _better(value: float | None, other: float | None, mode: str) -> bool | None:
    """Whether ``value`` beats ``other`` (None when either is missing)."""
    if value is None or other is None or not (math.isfinite(value) and math.isfinite(other)):
        return None
    return value < other if mode == "min" else value > other


def activation_rule(new: ModelInfo, active: ModelInfo | None) -> tuple[bool, str]:
    """Whether ``new`` becomes active instead of ``active``, and why, in words."""
    if active is None or active.name == new.name:
        return True, f"the first model of dataset {new.dataset!r}"
    label = metric_label(new.headline_metric)
    mode = metric_mode(new.headline_metric, new.headline_mode)
    same_metric = active.headline_metric == new.headline_metric
    wins = _better(new.headline_value, active.headline_value, mode) if same_metric else None
    direction = "lower" if mode == "min" else "higher"
    if wins:
        return True, (
            f"its {label} {new.headline_value:.4g} beats the previous active model "
            f"{active.name!r} ({active.headline_value:.4g}; {direction} is better)"
        )
    if wins is None:
        why = f"it cannot be compared with the active model {active.name!r} on {label}"
    else:
        why = (
            f"the active model {active.name!r} is as good or better on {label} "
            f"({active.headline_value:.4g} vs {new.headline_value:.4g}; {direction} is better)"
        )
    return False, why


def best_model(candidates: list[ModelInfo], metric: str) -> tuple[ModelInfo | None, str]:
    """The model to make active when the active one is gone: the best of ``candidates`` on
    the task's headline ``metric`` (the newest among equals), and why, in words. None when no
    candidate has a score on that metric to compare."""
    scored = [
        m
        for m in candidates
        if m.headline_metric == metric
        and m.headline_value is not None
        and math.isfinite(m.headline_value)
    ]
    if not candidates:
        return None, "no model of it remains"
    if not scored:
        return None, f"no remaining model has a {metric_label(metric)} score to compare"
    mode = metric_mode(metric, scored[0].headline_mode)
    newest_first = sorted(scored, key=lambda m: m.created, reverse=True)
    pick = (min if mode == "min" else max)(newest_first, key=lambda m: m.headline_value or 0.0)
    direction = "lowest" if mode == "min" else "highest"
    return pick, (
        f"it has the {direction} {metric_label(metric)} ({pick.headline_value:.4g}) of the "
        f"{len(scored)} remaining model(s)"
    )


def _activate(models: ModelStore, info: ModelInfo) -> tuple[bool, str]:
    """Apply the activation rule under the registry lock; return (active, why)."""
    decision: list[tuple[bool, str]] = []

    def change(registry: dict[str, Any]) -> None:
        name = registry.get("active")
        current = None
        if name and name in registry["models"] and name != info.name:
            folder = models.model_dir(info.dataset, name).parent
            current = ModelInfo.from_entry(
                info.dataset, name, registry["models"][name], folder, True
            )
        made_active, why = activation_rule(info, current)
        if made_active:
            registry["active"] = info.name
        decision.append((made_active, why))

    models.update_registry(info.dataset, change)
    return decision[0]


def completed_fields(
    job: TrainingJob,
    info: ModelInfo,
    *,
    note: str = "",
    last_checkpoint: Path | None = None,
    activation: tuple[bool, str] | None = None,
) -> dict[str, Any]:
    """The final fields of a job whose model ``info`` is registered (artifacts, name, reason);
    ``activation`` is the rule's decision (made active?, why) when it was just applied."""
    artifacts = {**job.artifacts, "model": str(info.path), "weights": str(info.weights)}
    reason = f"model {info.name!r} registered for dataset {info.dataset!r}"
    if activation is not None:
        active, why = activation
        artifacts["activation"] = f"{'active' if active else 'not active'}: {why}"
        reason = f"{reason} {'and made active' if active else '(not active)'}"
    fields: dict[str, Any] = {"artifacts": artifacts, "model_name": info.name}
    fields["status_reason"] = f"{reason} ({note})" if note else reason
    if last_checkpoint is not None:
        fields["checkpoint_path"] = str(last_checkpoint)
    return fields


def refuse_registered(models: ModelStore, job: TrainingJob) -> None:
    """Raise NotResumable when this job's model is already registered: nothing is left to train
    (and training again would register it twice)."""
    info = models.find_by_job(job.dataset, job.id) if job.dataset else None
    if info is not None:
        raise NotResumable(
            f"Cannot resume job {job.id}: its model {info.name!r} is already registered "
            f"for dataset {job.dataset!r}, so there is nothing left to train"
        )


def register_model(models: ModelStore, job: TrainingJob, outcome: AttemptOutcome) -> dict[str, Any]:
    """Register a finished job's model, apply the activation rule; return the job's final
    fields (artifacts, model name, reason).

    Raises:
        TrainingError: the job left no weights file. DiskFull, RegistryCorrupt: as
            ``ModelStore.save``.
    """
    result = outcome.result
    if result is None or result.weights is None or not Path(result.weights).is_file():
        raise TrainingError(f"job {job.id} finished without a weights file to register")
    dataset = job.dataset or dataset_name(Path(job.dataset_path))
    existing = models.find_by_job(dataset, job.id)
    if existing is not None:
        return completed_fields(
            job, existing, note="registered earlier", last_checkpoint=result.last_checkpoint
        )
    # kept with the model: audio's preview sounds, detection's results (confusion matrix...)
    kept = {sub: Path(result.run_dir) / sub for sub in ("previews", "results")}
    config, metrics = model_files(job, result)
    headline = result.headline_metric or "best_metric"
    original_fields = {
        k: v for k, v in result.metrics.items() if k.startswith("best_") and k != headline
    }
    entry = ModelEntry(
        dataset=dataset,
        name=job.model_name,
        weights=Path(result.weights),
        task=job.task,
        config=config,
        metrics=metrics,
        base_model=job.config.get("base_model"),
        epochs_completed=result.epochs_completed,
        headline=(headline, result.headline_value),
        headline_mode=metric_mode(headline, result.headline_mode),
        fields=original_fields,
        dataset_snapshot=str(job.artifacts.get("dataset_snapshot", "")),
        dataset_fingerprint=str(job.artifacts.get("dataset_fingerprint", "")),
        job_id=job.id,
        versions=package_versions(),
        extra_files={sub: path for sub, path in kept.items() if path.is_dir()},
    )
    note = ""
    try:
        info = models.save(entry)
    except ModelExists:  # taken meanwhile, or two auto-named jobs in one second
        info = models.save(replace(entry, name=f"{job.model_name}-{job.id[:6]}"))
        note = (
            f"NOTE: the name {job.model_name!r} was taken while this job ran, so the model "
            f"was registered as {info.name!r}"
        )
    try:
        activation = _activate(models, info)
        info = models.get(dataset, info.name)
    except SmallTrainError as exc:  # registered all the same: say so, do not fail the job
        activation = (False, f"it could not be made active: {exc}")
        note = "; ".join(filter(None, [note, activation[1]]))
    return completed_fields(
        job, info, note=note, last_checkpoint=result.last_checkpoint, activation=activation
    )
