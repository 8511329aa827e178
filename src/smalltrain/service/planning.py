"""Before a job runs: ``JobSpec`` → a planned ``TrainingJob``, ready to queue.

``plan_job`` does everything that can fail before anything is queued: it resolves the dataset
(a registered name or a path, which it registers), inspects it with its task, builds the config
(adaptive, or the one given, plus overrides), applies the weights rule for the spec's origin
(``service.weights.check_weights``), checks the model name and the free space, and writes the
run's ``config.yaml``. ``TrainingManager.start_training`` then queues it, reserving the model
name in the same database transaction. After the job, ``registration`` turns its result into a
registered model.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from smalltrain import paths, tasks
from smalltrain.engine.config import apply_overrides
from smalltrain.engine.fsutil import atomic_write_text, require_free
from smalltrain.engine.jobs import TrainingJob
from smalltrain.engine.locks import FileLock
from smalltrain.engine.plain import plain
from smalltrain.errors import ConfigError, DatasetNotFound, ModelExists, TrainingError, shorten
from smalltrain.service.datasets import names_for_path, record_for
from smalltrain.service.execution.placement import Placement, split_placement
from smalltrain.service.jobspec import JobSpec, Origin, config_dict
from smalltrain.service.resuming import RUN_CONFIG
from smalltrain.service.weights import check_weights
from smalltrain.store.datasets import DatasetRecord, DatasetStore
from smalltrain.store.models import ModelStore
from smalltrain.store.names import looks_like_path, validate_name

__all__ = [
    "MIN_FREE_BYTES",
    "ConfigFile",
    "JobSpec",
    "as_spec",
    "check_model_name",
    "dataset_name",
    "plan_job",
    "preset_plan",
    "read_config_file",
    "resolve_dataset",
    "start_line",
    "write_run_config",
]

#: Free space a job needs at least, in the home and in its run folder, to be queued: room for
#: its database records, first checkpoints and caches. Less than that is refused at once
#: instead of failing (or, worse, stalling) midway.
MIN_FREE_BYTES = 16 << 20


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
    spec: JobSpec,
    datasets: DatasetStore,
    models: ModelStore,
    home: Path,
    inspect: Callable[[Any, Path], Any] | None = None,
    report: Any = None,
    origin: Origin = "local",
) -> TrainingJob:
    """Resolve the dataset, inspect it, choose the config and name: a job ready to queue.

    A dataset given by path is registered (under its folder's name, or the name it already
    has), so ``smalltrain datasets list`` shows every dataset a model was trained on. The
    job's full config is written to ``<run_dir>/config.yaml``.

    Args:
        inspect: ``inspect(task, path)`` returns the task's report of the dataset; by default
            ``task.inspect(path)``. A caller that keeps reports (the web UI's helper process,
            keyed by the folder's sizes and times) passes its own, so Start does not read
            every file again.
        report: the dataset's inspection when the caller already has it (a sweep plans many
            jobs on one dataset).
        origin: "local" (the CLI, the Python API) or "remote" (the web UI, the HTTP API: no
            paths to weights, no run folder; see ``service.jobspec``).

    Raises:
        DatasetNotFound, DatasetError, ConfigError, InvalidName, ModelExists, TrainingError,
        WeightsNotFound, DiskFull.
    """
    if origin == "remote" and spec.run_dir is not None:
        raise ConfigError(
            "run_dir", str(spec.run_dir), "the web UI and the HTTP API cannot choose a run "
            "folder; every job writes under the home's runs/ folder",
        )  # fmt: skip
    dataset, path, kind, record = resolve_dataset(spec, datasets)
    task_name = spec.task or kind
    try:
        task = tasks.get_task(task_name)
    except KeyError as exc:
        raise TrainingError(str(exc.args[0])) from None
    if origin == "remote":  # what the request names, before the task resolves any of it
        check_weights(task, {**_given_config(spec), **spec.overrides}, home, origin)
    if report is None:
        report = inspect(task, path) if inspect is not None else task.inspect(path)
    config, device, placement = _config(task, report, spec)
    fields = check_weights(task, config_dict(config), home, origin)
    if record is None:
        record = _register_path(datasets, home, dataset, path, task_name, report)
        dataset = record.name
    name = _model_name(spec, fields, task_name, dataset, models)
    notes = getattr(task, "config_notes", None)
    job = TrainingJob(
        task=task_name,
        dataset_path=str(path),
        dataset=dataset,
        model_name=name,
        config=fields,
        priority=spec.priority,
        device=device,
        placement=placement.to_dict(),
        artifacts={
            "dataset_snapshot": record.snapshot,
            "dataset_fingerprint": record.fingerprint,
            **({"notes": notes(config, spec.overrides)} if notes else {}),
        },
    )
    job.run_dir = str(Path(spec.run_dir).expanduser().resolve() if spec.run_dir else
                      paths.run_dir(home, job.id))  # fmt: skip
    require_free(home, MIN_FREE_BYTES, "to start a job in the smalltrain home")
    require_free(job.run_dir, MIN_FREE_BYTES, "for the job's run folder")
    write_run_config(job, spec.preset)
    return job


def _given_config(spec: JobSpec) -> dict[str, Any]:
    if spec.config is None:
        return {}
    return dict(spec.config) if isinstance(spec.config, Mapping) else config_dict(spec.config)


def _config(task: Any, report: Any, spec: JobSpec) -> tuple[Any, str | None, Placement]:
    """The task config (adaptive, or the one given, plus overrides), the job's device and
    its placement."""
    # num_cpus, num_gpus, max_retries, ship_dataset say where the job runs, not what it trains.
    overrides, placement = split_placement(spec.overrides)
    # "--set device=cpu" and JobSpec(device=...) mean the same; the explicit argument wins.
    device = spec.device or overrides.pop("device", None) or None
    # A config's own "preset" field (a run's config.yaml has one) names the preset to start
    # from; every other field then overrides that preset's values.
    preset = str(overrides.pop("preset", None) or spec.preset)
    if spec.config is None:
        config = preset_plan(task, report, device or "auto", preset, overrides)
    else:
        raw = spec.config
        config = task.config_from_dict(raw) if isinstance(raw, Mapping) else raw
        config = apply_overrides(config, {**overrides, **({"device": device} if device else {})})
    return config, device, placement


def preset_plan(
    task: Any, report: Any, device: str, preset: str, overrides: Mapping[str, Any]
) -> Any:
    """The config a preset plans for ``report``, with the user's ``overrides``: the one plan
    the CLI (``plan_job``) and the web UI's train form both use. The preset plans around the
    fields given: for detection, a ``base_model`` .pt means fine-tuning (frozen backbone layers
    on small data, fewer epochs), a .yaml training from scratch.

    Raises:
        ConfigError, WeightsNotFound: as the task's ``adaptive_config``.
    """
    return task.adaptive_config(report, device, preset=preset, **overrides)


def start_line(config: Mapping[str, Any]) -> str:
    """How a job's model starts, in one line: "training from scratch (yolo11n.yaml)" or
    "fine-tuning yolov8s.pt: 10 backbone layers frozen, 20 epochs"."""
    base = config.get("base_model")
    epochs = config.get("epochs")
    length = f", {epochs} epochs" if epochs else ""
    if not isinstance(base, str) or not base.strip():
        return f"training from scratch{length}"
    if base.strip().lower().endswith((".yaml", ".yml")):
        return f"training from scratch ({base}){length}"
    frozen = int(config.get("freeze_layers") or 0)
    layers = f"{frozen} backbone layers frozen" if frozen else "every layer trained"
    return f"fine-tuning {base}: {layers}{length}"


def _model_name(
    spec: JobSpec, config: Mapping[str, Any], task_name: str, dataset: str, models: ModelStore
) -> str:
    name = spec.model_name or config.get("model_name") or ""
    name = name or f"{task_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    validate_name(name, "model name")
    if spec.model_name and name in models.read_registry(dataset)["models"]:
        raise ModelExists(
            f"A model named {name!r} already exists for dataset {dataset!r}; choose "
            f"another model name (the CLI's --name), or delete it with: "
            f"smalltrain models delete {dataset}/{name}"
        )
    return name


def write_run_config(job: TrainingJob, preset: str = "") -> Path:
    """Write the job's full config to ``<run_dir>/config.yaml`` (``train --config`` reads it)."""
    run_dir = Path(str(job.run_dir))
    path = run_dir / RUN_CONFIG
    data = {
        "task": job.task,
        "dataset": job.dataset,
        "dataset_path": job.dataset_path,
        "preset": preset,
        "config": plain(job.config),
    }
    header = (
        f"# The full config of smalltrain job {job.id}. Repeat the run with:\n"
        f"#   smalltrain train --config {path}\n"
        "# (--set KEY=VALUE after it changes a field; every field here is applied as given)\n"
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, header + yaml.safe_dump(data, sort_keys=False))


def _register_path(
    datasets: DatasetStore, home: Path, name: str, path: Path, task_name: str, report: Any
) -> DatasetRecord:
    """Register the dataset at ``path`` (planned as ``name``) unless another start registered
    it meanwhile: two starts racing on one new folder share one dataset (and so one model-name
    reservation), not ``toy`` and ``toy-2``. One home-wide lock makes check-and-add one step."""
    with FileLock(paths.datasets_lock_path(Path(home))):
        for known in names_for_path(datasets, path):
            return datasets.get(known)
        if name in {r.name for r in datasets.list()}:
            name = _free_name(datasets, name)
        return datasets.add(record_for(name, path, task_name, report))


def _free_name(datasets: DatasetStore, name: str) -> str:
    """``name``, or ``name-2``, ``name-3``... if another dataset already holds it."""
    known = {r.name for r in datasets.list()}
    candidate, n = name, 1
    while candidate in known:
        n += 1
        candidate = f"{name[:60]}-{n}"
    return candidate


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
            f"another model name (the CLI's --name), or delete it with: "
            f"smalltrain models delete {dataset}/{job.model_name}"
        )


def resolve_dataset(spec: JobSpec, datasets: DatasetStore) -> tuple[str, Path, str, Any]:
    """(dataset name, path, kind, record or None) of a registered name or a path.

    A path already registered (under any name) gives that registration; a new path gets its
    folder's name (made unique) and no record yet (``plan_job`` registers it).
    """
    ref = str(spec.dataset)
    try:
        record = datasets.get(ref)
        return record.name, Path(record.path), record.kind, record
    except DatasetNotFound as missing:
        path = Path(ref).expanduser()
        if not _exists(path):
            known = ", ".join(r.name for r in datasets.list()) or "none yet"
            shown = str(shorten(ref))
            hint = (
                f"{shown}: no such file or folder, and no dataset is registered under that "
                f"name (registered: {known})"
                if looks_like_path(ref)
                else str(missing)
            )
            raise DatasetNotFound(
                f"{shown} is neither a registered dataset nor an existing path. {hint}"
            ) from None
    path = path.resolve()
    for name in names_for_path(datasets, path):
        record = datasets.get(name)
        return record.name, Path(record.path), record.kind, record
    kind = spec.task or tasks.detect_kind(path)
    return _free_name(datasets, dataset_name(path)), path, kind, None


def _exists(path: Path) -> bool:
    """Whether ``path`` exists; False for one the system cannot even look up (too long...)."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


@dataclass(frozen=True)
class ConfigFile:
    """What ``smalltrain train --config FILE`` read: config fields, and what the file names."""

    fields: dict[str, Any]
    task: str | None = None
    dataset: str | None = None
    dataset_path: str | None = None
    preset: str | None = None
    path: Path | None = None
    #: each field's line in the file (1-based), for errors about its value
    lines: Mapping[str, int] = field(default_factory=dict)

    def located(self, error: ConfigError) -> ConfigError:
        """``error`` naming this file and the line of its field, when the field's value came
        from here (a --set of the same field wins, and is not the file's fault)."""
        line = self.lines.get(error.field)
        if line is None or self.path is None or self.fields.get(error.field) != error.value:
            return error
        return ConfigError(error.field, error.value, f"{error.rule} ({self.path}, line {line})")

    def dataset_ref(self, datasets: DatasetStore) -> str | None:
        """The dataset to train on: its registered name, or its path when the name is gone."""
        if self.dataset:
            try:
                return datasets.get(self.dataset).name
            except DatasetNotFound:
                pass
        return self.dataset_path or self.dataset


def read_config_file(path: str | os.PathLike[str]) -> ConfigFile:
    """Read a YAML config file: a mapping of config fields (the same as ``--set``), or a run's
    or model's ``config.yaml`` (its ``config`` section, with ``task`` and ``dataset``).

    Raises:
        ConfigError: the file is missing, not YAML, or not a mapping of fields.
    """
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except OSError as exc:
        raise ConfigError(
            "--config", str(file), f"cannot be read ({exc.strerror or exc})"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError("--config", str(file), f"is not valid YAML ({exc})") from None
    if not isinstance(data, Mapping):
        raise ConfigError("--config", str(file), "must be a YAML mapping of config fields")
    section = data.get("config")
    lines = _key_lines(text, nested="config" if isinstance(section, Mapping) else None)
    if not isinstance(section, Mapping):
        return ConfigFile(dict(data), path=file, lines=lines)
    dataset, dataset_path = data.get("dataset"), data.get("dataset_path")
    return ConfigFile(
        fields=dict(section),
        task=data.get("task"),
        dataset=str(dataset) if dataset else None,
        dataset_path=str(dataset_path) if dataset_path else None,
        preset=data.get("preset") or None,
        path=file,
        lines=lines,
    )


def _key_lines(text: str, nested: str | None) -> dict[str, int]:
    """The 1-based line of each key of a YAML mapping (of its ``nested`` section's)."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return {}
    if nested is not None and isinstance(node, yaml.MappingNode):
        node = next((v for k, v in node.value if k.value == nested), None)
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): k.start_mark.line + 1 for k, _ in node.value}
