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
from smalltrain.errors import DatasetError
from smalltrain.paths import find_data_yaml
from smalltrain.store.datasets import DatasetStore, quick_fingerprint
from smalltrain.store.names import validate_name
from smalltrain.store.records import DatasetRecord

__all__ = ["names_for_path", "record_for", "register_dataset", "summarise_report"]


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


def register_dataset(
    store: DatasetStore,
    name: str,
    path: str | os.PathLike[str],
    kind: str | None = None,
    report: Any = None,
) -> DatasetRecord:
    """Inspect the dataset at ``path`` and register (or re-register) it as ``name``.

    Registering a path that another name already holds is allowed (the names keep separate
    model registries); ``names_for_path`` tells the caller, who should warn.

    Args:
        store: where the record is kept.
        name: a folder-safe name (see ``validate_name``).
        path: a folder of audio, a YOLO data.yaml, or a folder holding one.
        kind: "audio" or "detect"; detected when None.
        report: the task's inspection of ``path`` when the caller already made it (the web
            UI shows the whole report); inspected here when None.

    Raises:
        InvalidName: the name is unsafe.
        DatasetError: the path is missing or holds nothing usable (from the task).
    """
    validate_name(name, "dataset name")
    target = Path(path).expanduser().resolve()
    kind = kind or tasks.detect_kind(target)
    try:
        task = tasks.get_task(kind)
    except KeyError as e:
        raise DatasetError(f"{target}: {e.args[0]}") from None
    if report is None:
        report = task.inspect(target)
    return store.add(record_for(name, target, kind, report))
