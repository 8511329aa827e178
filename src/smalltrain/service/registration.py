"""After a job: its result → a registered model.

``register_model`` copies the weights into the ``ModelStore`` with the job link, headline
metric, dataset snapshot, fingerprint and versions, and makes the model active when its dataset
has none yet.

Registration is idempotent per job: a job registers at most one model. When the registry
already holds a model of this job (its scheduler died after registering it, before the job
was marked COMPLETED), that model is returned and nothing is copied again. A model name taken
meanwhile (say, by a job resumed after another took the name) is never silently replaced: the
model gets ``<name>-<job id prefix>`` and the job's reason says so plainly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from smalltrain.engine.checkpoint_index import package_versions
from smalltrain.engine.jobs import TrainingJob
from smalltrain.errors import ModelExists, NotResumable, SmallTrainError, TrainingError
from smalltrain.service.attempt import ExecOutcome
from smalltrain.service.planning import dataset_name
from smalltrain.store.models import ModelInfo, ModelStore

__all__ = ["completed_fields", "refuse_registered", "register_model"]


def completed_fields(
    job: TrainingJob, info: ModelInfo, *, note: str = "", last_checkpoint: Path | None = None
) -> dict[str, Any]:
    """The final fields of a job whose model ``info`` is registered (artifacts, name, reason)."""
    artifacts = {**job.artifacts, "model": str(info.path), "weights": str(info.weights)}
    fields: dict[str, Any] = {"artifacts": artifacts, "model_name": info.name}
    reason = f"model {info.name!r} registered for dataset {info.dataset!r}"
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


def register_model(models: ModelStore, job: TrainingJob, outcome: ExecOutcome) -> dict[str, Any]:
    """Register a finished job's model (active if its dataset has none); return the job's
    final fields (artifacts, model name, reason).

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
    note = ""
    try:
        info = models.save(dataset, job.model_name, result.weights, **kwargs)
    except ModelExists:
        info = models.save(dataset, f"{job.model_name}-{job.id[:6]}", result.weights, **kwargs)
        note = (
            f"NOTE: the name {job.model_name!r} was taken while this job ran, so the model "
            f"was registered as {info.name!r}"
        )
    try:
        if models.get_active(dataset) is None:
            models.set_active(dataset, info.name)
            info = models.get(dataset, info.name)
    except SmallTrainError as exc:  # registered all the same: say so, do not fail the job
        note = "; ".join(filter(None, [note, f"it could not be made active: {exc}"]))
    return completed_fields(job, info, note=note, last_checkpoint=result.last_checkpoint)
