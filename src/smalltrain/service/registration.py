"""After a job: its result → a registered model.

``register_model`` copies the weights into the ``ModelStore`` with the job link, headline
metric, dataset snapshot, fingerprint and versions, and makes the model active when its dataset
has none yet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from smalltrain.engine.checkpoint_index import package_versions
from smalltrain.engine.jobs import TrainingJob
from smalltrain.errors import ModelExists, TrainingError
from smalltrain.service.attempt import ExecOutcome
from smalltrain.service.planning import dataset_name
from smalltrain.store.models import ModelStore

__all__ = ["register_model"]


def register_model(models: ModelStore, job: TrainingJob, outcome: ExecOutcome) -> dict[str, Any]:
    """Register a finished job's model (active if its dataset has none); return the job's
    final fields (artifacts, model name, reason)."""
    result = outcome.result
    if result is None or result.weights is None or not Path(result.weights).is_file():
        raise TrainingError(f"job {job.id} finished without a weights file to register")
    dataset = job.dataset or dataset_name(Path(job.dataset_path))
    previews = Path(result.run_dir) / "previews"
    kwargs: dict[str, Any] = dict(
        task=job.task,
        config=job.config,
        metrics=dict(result.metrics),
        base_model=job.config.get("base_model"),
        epochs_completed=result.epochs_completed,
        headline=(result.headline_metric or "best_metric", result.headline_value),
        dataset_snapshot=str(job.artifacts.get("dataset_snapshot", "")),
        dataset_fingerprint=str(job.artifacts.get("dataset_fingerprint", "")),
        job_id=job.id,
        versions=package_versions(),
        extra_files={"previews": previews} if previews.is_dir() else None,
    )
    name = job.model_name
    try:
        info = models.save(dataset, name, result.weights, **kwargs)
    except ModelExists:  # e.g. two auto-named jobs in one second
        name = f"{name}-{job.id[:6]}"
        info = models.save(dataset, name, result.weights, **kwargs)
    if models.get_active(dataset) is None:
        models.set_active(dataset, info.name)
    artifacts = {**job.artifacts, "model": str(info.path), "weights": str(info.weights)}
    fields: dict[str, Any] = {"artifacts": artifacts, "model_name": info.name}
    fields["status_reason"] = f"model {info.name!r} registered for dataset {dataset!r}"
    if result.last_checkpoint is not None:
        fields["checkpoint_path"] = str(result.last_checkpoint)
    return fields
