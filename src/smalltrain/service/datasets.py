"""Registering a dataset: detect its kind, inspect it with its task, keep the record.

Inspection needs the task (and so may import numpy, soundfile or Ultralytics); the store only
keeps the resulting ``DatasetRecord``. This module is the one place that joins the two.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from smalltrain import tasks
from smalltrain.errors import DatasetError, DatasetExists
from smalltrain.paths import find_data_yaml
from smalltrain.store.datasets import DatasetStore, quick_fingerprint
from smalltrain.store.names import validate_name
from smalltrain.store.records import DatasetRecord

__all__ = [
    "REMOTE_REMEDY",
    "names_for_path",
    "record_for",
    "refuse_other_folder",
    "register_dataset",
    "summarise_report",
]


def summarise_report(report: Mapping[str, Any]) -> dict[str, Any]:
    """The report's dict, small: lists of records (files, problems...) become their lengths.

    Headline counts are added under common names where the report has their source:
    ``files``, ``duration_s`` (audio); ``images``, ``classes``, ``instances`` (detection).
    """
    out: dict[str, Any] = {}
    for key, value in report.items():
        if key == "snapshot":
            continue
        records = isinstance(value, (list, tuple)) and any(isinstance(v, Mapping) for v in value)
        out[str(key)] = len(value) if records else value
    if "total_duration_s" in report:
        out["duration_s"] = report["total_duration_s"]
    if isinstance(report.get("images_per_split"), Mapping):
        out["images"] = sum(report["images_per_split"].values())
    if isinstance(report.get("names"), (list, tuple)):
        out["classes"] = len(report["names"])
    if isinstance(report.get("instances_per_class"), Mapping):
        out["instances"] = sum(report["instances_per_class"].values())
    return out


def record_for(name: str, path: Path, kind: str, report: Any) -> DatasetRecord:
    """The record of a dataset already inspected (``report`` is its task's report)."""
    return DatasetRecord(
        name=name,
        path=str(path),
        kind=kind,
        summary=summarise_report(report.to_dict()),
        snapshot=report.snapshot(),
        fingerprint=report.fingerprint,
        quick_fingerprint=quick_fingerprint(path),
    )


def _identity(path: str | os.PathLike[str]) -> Path:
    """What makes two dataset paths the same dataset: a YOLO data.yaml (given itself or by
    its folder) or the resolved folder."""
    target = Path(path).expanduser().resolve()
    found = find_data_yaml(target)
    return found.resolve() if found is not None else target


def names_for_path(store: DatasetStore, path: str | os.PathLike[str]) -> list[str]:
    """The names under which the dataset at ``path`` is registered (usually one or none),
    the oldest registration first."""
    wanted = _identity(path)
    records = sorted(store.list(), key=lambda r: r.created_at)
    return [r.name for r in records if _identity(r.path) == wanted]


#: How a face that is not the CLI says what to do instead (``{name}`` is filled in).
REMOTE_REMEDY = (
    "Choose another name, or remove dataset {name!r} first (Datasets tab: Remove…; "
    "API: DELETE /api/datasets/{name}) and register the new folder"
)


def refuse_other_folder(
    store: DatasetStore, name: str, path: str | os.PathLike[str], remedy: str | None = None
) -> None:
    """Refuse to register ``path`` as ``name`` when ``name`` holds another folder.

    ``remedy`` replaces the CLI's advice (``REMOTE_REMEDY`` for the web UI and the API).

    Raises:
        DatasetExists: naming both folders, what would change, and how to do it on purpose.
    """
    record = store.job_store.get_dataset(name)
    if record is None or _identity(record.path) == _identity(path):
        return
    how = (
        remedy.format(name=name)
        if remedy is not None
        else f"Choose another name, or replace it on purpose: smalltrain datasets add {name} "
        f"PATH --replace (or remove it first: smalltrain datasets remove {name})"
    )
    raise DatasetExists(
        f"dataset {name!r} is registered for {record.path} ({record.snapshot}); registering "
        f"{Path(path)} under that name would point it, and the models trained on it, at "
        f"another folder. {how}"
    )


def register_dataset(
    store: DatasetStore,
    name: str,
    path: str | os.PathLike[str],
    kind: str | None = None,
    report: Any = None,
    replace: bool = False,
) -> DatasetRecord:
    """Inspect the dataset at ``path`` and register (or re-register) it as ``name``.

    Registering a path that another name already holds is allowed (the names keep separate
    model registries); ``names_for_path`` tells the caller, who should warn. Registering a
    name that another folder holds is refused unless ``replace``: its models were trained on
    that folder.

    Args:
        store: where the record is kept.
        name: a folder-safe name (see ``validate_name``).
        path: a folder of audio, a YOLO data.yaml, or a folder holding one.
        kind: "audio" or "detect"; detected when None.
        report: the task's inspection of ``path`` when the caller already made it (the web
            UI shows the whole report); inspected here when None.
        replace: point a name registered for another folder at this one.

    Raises:
        InvalidName: the name is unsafe.
        DatasetExists: ``name`` is registered for another folder (and not ``replace``).
        DatasetError: the path is missing or holds nothing usable (from the task).
    """
    validate_name(name, "dataset name")
    target = Path(path).expanduser().resolve()
    if not replace:
        refuse_other_folder(store, name, target)
    kind = kind or tasks.detect_kind(target)
    try:
        task = tasks.get_task(kind)
    except KeyError as e:
        raise DatasetError(f"{target}: {e.args[0]}") from None
    if report is None:
        report = task.inspect(target)
    return store.add(record_for(name, target, kind, report))
