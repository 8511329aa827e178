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
from smalltrain.engine.jobs import TrainingJob
from smalltrain.errors import DatasetNotFound, ModelExists, TrainingError
from smalltrain.service.placement import split_placement
from smalltrain.store.datasets import DatasetStore
from smalltrain.store.models import ModelStore
from smalltrain.store.names import validate_name

__all__ = ["JobSpec", "as_spec", "dataset_name", "plan_job", "resolve_dataset"]


@dataclass(frozen=True)
class JobSpec:
    """What to train. Everything but ``dataset`` has a sensible default.

    Args:
        dataset: a registered dataset name, or a path (folder of audio, YOLO data.yaml).
        task: "audio", "detect", ...; detected from the dataset when None.
        model_name: the name to register the model under; ``<task>-<yyyymmdd-HHMMSS>`` if None.
        preset: "auto" (by dataset size) or a task preset such as "tiny", "small", "medium".
        overrides: config fields to set, e.g. ``{"epochs": 5}`` (strings are converted), and
            placement settings (``num_cpus``, ``num_gpus``, ``max_retries``, ``ship_dataset``;
            see ``service.placement``).
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


def plan_job(
    spec: JobSpec, datasets: DatasetStore, models: ModelStore, home: Path, report: Any = None
) -> TrainingJob:
    """Resolve the dataset, inspect it, choose the config and name: a job ready to queue.

    ``report`` is the dataset's inspection when the caller already has it (a sweep plans many
    jobs on one dataset).

    Raises:
        DatasetNotFound, DatasetError, ConfigError, InvalidName, ModelExists, TrainingError.
    """
    dataset, path, kind, record = resolve_dataset(spec, datasets)
    task_name = spec.task or kind
    try:
        task = tasks.get_task(task_name)
    except KeyError as exc:
        raise TrainingError(str(exc.args[0])) from None
    report = report if report is not None else task.inspect(path)
    # num_cpus, num_gpus, max_retries, ship_dataset say where the job runs, not what it trains.
    overrides, placement = split_placement(spec.overrides)
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
        placement=placement.to_dict(),
        artifacts={
            "dataset_snapshot": record.snapshot if record else report.snapshot(),
            "dataset_fingerprint": record.fingerprint if record else report.fingerprint,
        },
    )
    job.run_dir = str(Path(spec.run_dir).expanduser().resolve() if spec.run_dir else
                      paths.run_dir(home, job.id))  # fmt: skip
    return job


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
