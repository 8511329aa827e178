"""Before a job runs: ``JobSpec`` → a queued ``TrainingJob``.

``plan_job`` does everything that can fail before anything is queued: it resolves the dataset
(a registered name or a path), inspects it with its task, builds the config (adaptive, or the
one given, plus overrides) and checks the model name. After the job, ``registration`` turns its
result into a registered model.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smalltrain import paths, tasks
from smalltrain.engine.config import apply_overrides
from smalltrain.engine.fsutil import require_free
from smalltrain.engine.jobs import TrainingJob
from smalltrain.errors import DatasetNotFound, ModelExists, TrainingError
from smalltrain.store.datasets import DatasetStore
from smalltrain.store.models import ModelStore
from smalltrain.store.names import validate_name

__all__ = [
    "MIN_FREE_BYTES",
    "JobSpec",
    "as_spec",
    "check_model_name",
    "dataset_name",
    "plan_job",
    "resolve_dataset",
]

#: Free space a job needs at least, in the home and in its run folder, to be queued: room for
#: its database records, first checkpoints and caches. Less than that is refused at once
#: instead of failing (or, worse, stalling) midway.
MIN_FREE_BYTES = 16 << 20


@dataclass(frozen=True)
class JobSpec:
    """What to train. Everything but ``dataset`` has a sensible default.

    Args:
        dataset: a registered dataset name, or a path (folder of audio, YOLO data.yaml).
        task: "audio", "detect", ...; detected from the dataset when None.
        model_name: the name to register the model under; ``<task>-<yyyymmdd-HHMMSS>`` if None.
        preset: "auto" (by dataset size) or a task preset such as "tiny", "small", "medium".
        overrides: config fields to set, e.g. ``{"epochs": 5}`` (strings are converted).
        config: a ready task config (or its dict) instead of an adaptive one.
        device: "auto", "cpu", "cuda", "cuda:1", "mps".
        run_dir: where the job writes checkpoints and previews; ``$HOME/runs/<job_id>`` if None.
        priority: higher runs first; equal priorities run in FIFO order.
    """

    dataset: str | os.PathLike[str]
    task: str | None = None
    model_name: str | None = None
    preset: str = "auto"
    overrides: Mapping[str, Any] = field(default_factory=dict)
    config: Any = None
    device: str | None = None
    run_dir: str | os.PathLike[str] | None = None
    priority: int = 0


def _config_dict(config: Any) -> dict[str, Any]:
    if hasattr(config, "to_dict"):
        return dict(config.to_dict())
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    return dict(config)


def dataset_name(path: Path) -> str:
    """A registry-safe dataset name for an unregistered dataset path (its folder name)."""
    folder = path.parent if path.is_file() else path
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", folder.name).strip("-.") or "dataset"
    return name[:64]


def as_spec(spec: Any, kwargs: Mapping[str, Any]) -> JobSpec:
    """Turn what ``start_training`` accepts into a ``JobSpec``."""
    if isinstance(spec, JobSpec):
        return dataclasses.replace(spec, **kwargs) if kwargs else spec
    if spec is None:
        return JobSpec(**kwargs)
    if isinstance(spec, (str, os.PathLike)):
        return JobSpec(dataset=spec, **kwargs)
    if isinstance(spec, Mapping):
        return JobSpec(**{**spec, **kwargs})
    dataset = getattr(spec, "dataset_name", None) or getattr(spec, "dataset", None)
    if not dataset:
        raise TrainingError(
            f"{type(spec).__name__} names no dataset; pass JobSpec(dataset=..., config=...)"
        )
    model_name = getattr(spec, "model_name", None) or None
    return JobSpec(dataset=dataset, config=spec, model_name=model_name, **kwargs)


def plan_job(spec: JobSpec, datasets: DatasetStore, models: ModelStore, home: Path) -> TrainingJob:
    """Resolve the dataset, inspect it, choose the config and name: a job ready to queue.

    Raises:
        DatasetNotFound, DatasetError, ConfigError, InvalidName, ModelExists, TrainingError.
    """
    dataset, path, kind, record = resolve_dataset(spec, datasets)
    task_name = spec.task or kind
    try:
        task = tasks.get_task(task_name)
    except KeyError as exc:
        raise TrainingError(str(exc.args[0])) from None
    report = task.inspect(path)
    overrides = dict(spec.overrides)
    # "--set device=cpu" and JobSpec(device=...) mean the same; the explicit argument wins.
    device = spec.device or overrides.pop("device", None)
    if spec.config is None:
        config = task.adaptive_config(report, device or "auto", preset=spec.preset, **overrides)
    else:
        raw = spec.config
        config = task.config_from_dict(raw) if isinstance(raw, Mapping) else raw
        config = apply_overrides(config, {**overrides, **({"device": device} if device else {})})
    config_dict = _config_dict(config)
    name = spec.model_name or config_dict.get("model_name") or ""
    name = name or f"{task_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    validate_name(name, "model name")
    if spec.model_name and name in models.read_registry(dataset)["models"]:
        raise ModelExists(
            f"A model named {name!r} already exists for dataset {dataset!r}; choose "
            f"another --model-name, or delete it with: smalltrain models delete {name}"
        )
    job = TrainingJob(
        task=task_name,
        dataset_path=str(path),
        dataset=dataset,
        model_name=name,
        config=config_dict,
        priority=spec.priority,
        device=device,
        artifacts={
            "dataset_snapshot": record.snapshot if record else report.snapshot(),
            "dataset_fingerprint": record.fingerprint if record else report.fingerprint,
        },
    )
    job.run_dir = str(Path(spec.run_dir).expanduser().resolve() if spec.run_dir else
                      paths.run_dir(home, job.id))  # fmt: skip
    require_free(home, MIN_FREE_BYTES, "to start a job in the smalltrain home")
    require_free(job.run_dir, MIN_FREE_BYTES, "for the job's run folder")
    return job


def check_model_name(models: ModelStore, job: TrainingJob) -> None:
    """Refuse a job whose model name another job's model already has in the registry.

    Raises:
        ModelExists: with what to do.
    """
    dataset = job.dataset or ""
    if not dataset:
        return
    entry = models.read_registry(dataset)["models"].get(job.model_name)
    if entry is not None and (not isinstance(entry, dict) or entry.get("job_id") != job.id):
        raise ModelExists(
            f"A model named {job.model_name!r} already exists for dataset {dataset!r}; choose "
            f"another --model-name, or delete it with: smalltrain models delete {job.model_name}"
        )


def resolve_dataset(spec: JobSpec, datasets: DatasetStore) -> tuple[str, Path, str, Any]:
    """(dataset name, path, kind, record or None) of a registered name or a path."""
    try:
        record = datasets.get(str(spec.dataset))
        return record.name, Path(record.path), record.kind, record
    except DatasetNotFound as missing:
        path = Path(spec.dataset).expanduser()
        if not path.exists():
            raise DatasetNotFound(
                f"{spec.dataset!s} is neither a registered dataset nor an existing path. {missing}"
            ) from None
    path = path.resolve()
    kind = spec.task or tasks.detect_kind(path)
    return dataset_name(path), path, kind, None
