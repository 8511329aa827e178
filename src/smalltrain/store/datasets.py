"""Registered datasets: ``DatasetRecord`` and ``DatasetStore``.

A dataset is registered under a name (``smalltrain datasets add NAME PATH``). Registration
detects its kind (a folder of audio → "audio", a YOLO data.yaml or a folder holding one →
"detect"), inspects it with that task, and records in the job store:

- ``summary``: the task report's ``to_dict()`` with lists of records replaced by their
  lengths, plus headline counts (audio: files, duration_s, sample_rates, channels; detect:
  images, classes, instances, names, images_per_split...);
- ``snapshot``: the seed's one-line text, e.g. "35 files, 12.5 min" or "200 images, 3 classes";
- ``fingerprint``: the task's content fingerprint (what a trained model records);
- ``quick_fingerprint``: sizes and mtimes of the file tree only (no content reads), cheap
  enough to check before every job: ``changed_since(name)`` warns when a dataset changed after
  it was registered.

The user's files are never touched: ``remove`` forgets the name only.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smalltrain.errors import DatasetError, DatasetNotFound
from smalltrain.store.names import validate_name

if TYPE_CHECKING:
    from smalltrain.store.db import JobStore

__all__ = ["DatasetRecord", "DatasetStore", "quick_fingerprint"]

# Files that tools write into a dataset folder without changing its content (Ultralytics'
# labels.cache, Finder's .DS_Store): they must not make a dataset look changed.
_IGNORED_SUFFIXES = (".cache", ".tmp")


@dataclass
class DatasetRecord:
    """A registered dataset. ``created_at`` is epoch seconds; ``path`` is absolute."""

    name: str
    path: str
    kind: str
    summary: dict[str, Any] = field(default_factory=dict)
    snapshot: str = ""
    fingerprint: str = ""
    quick_fingerprint: str = ""
    created_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return asdict(self)


def _summarise(report: Mapping[str, Any]) -> dict[str, Any]:
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


def quick_fingerprint(path: str | os.PathLike[str]) -> str:
    """A fast fingerprint of a dataset: relative paths, sizes and mtimes, no content reads.

    A folder is walked in sorted order (hidden files and ``*.cache`` skipped); a file (a
    data.yaml) stands for the folder that holds it. A missing path gives ``"missing"``.
    """
    root = Path(path).expanduser()
    if root.is_file():
        root = root.parent
    if not root.is_dir():
        return "missing"
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or name.endswith(_IGNORED_SUFFIXES):
                continue
            full = os.path.join(folder, name)
            try:
                st = os.stat(full)
            except OSError:
                continue
            rel = os.path.relpath(full, root)
            digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


class DatasetStore:
    """Registers datasets by name in the job store's ``datasets`` table.

    Args:
        job_store: the ``JobStore`` holding the table.
        cache_root: where tasks may cache derived data (spectrograms); informational here.
    """

    def __init__(self, job_store: JobStore, cache_root: Path | None = None) -> None:
        self.job_store = job_store
        self.cache_root = cache_root

    def register(
        self, name: str, path: str | os.PathLike[str], kind: str | None = None
    ) -> DatasetRecord:
        """Inspect the dataset at ``path`` and register (or re-register) it as ``name``.

        Args:
            name: a folder-safe name (see ``validate_name``).
            path: a folder of audio, a YOLO data.yaml, or a folder holding one.
            kind: "audio" or "detect"; detected when None.

        Raises:
            InvalidName: the name is unsafe.
            DatasetError: the path is missing or holds nothing usable (from the task).
        """
        from smalltrain.tasks import detect_kind, get_task

        validate_name(name, "dataset name")
        target = Path(path).expanduser().resolve()
        kind = kind or detect_kind(target)
        try:
            task = get_task(kind)
        except KeyError as e:
            raise DatasetError(f"{target}: {e.args[0]}") from None
        report = task.inspect(target)
        record = DatasetRecord(
            name=name,
            path=str(target),
            kind=kind,
            summary=_summarise(report.to_dict()),
            snapshot=report.snapshot(),
            fingerprint=report.fingerprint,
            quick_fingerprint=quick_fingerprint(target),
        )
        self.job_store.upsert_dataset(record)
        return record

    def get(self, name: str) -> DatasetRecord:
        """Return the dataset registered as ``name``.

        Raises:
            DatasetNotFound: with a hint to register it.
        """
        record = self.job_store.get_dataset(name)
        if record is None:
            known = ", ".join(r.name for r in self.list()) or "none yet"
            raise DatasetNotFound(
                f"No dataset named {name!r} (registered: {known}). "
                f"Register it with: smalltrain datasets add {name} PATH"
            )
        return record

    def list(self) -> list[DatasetRecord]:
        """Every registered dataset, by name."""
        return self.job_store.list_datasets()

    def remove(self, name: str) -> DatasetRecord:
        """Forget the dataset ``name``; its files stay where they are. Returns the old record.

        Raises:
            DatasetNotFound: no such dataset.
        """
        record = self.get(name)
        self.job_store.delete_dataset(name)
        return record

    def get_data_yaml_path(self, name: str) -> Path:
        """Return the YOLO data.yaml of the detection dataset ``name``.

        Raises:
            DatasetNotFound: no such dataset.
            DatasetError: it is not a detection dataset, or its data.yaml is gone.
        """
        from smalltrain.tasks import find_data_yaml

        record = self.get(name)
        if record.kind != "detect":
            raise DatasetError(
                f"Dataset {name!r} is a {record.kind} dataset; only detection datasets have a "
                "data.yaml."
            )
        found = find_data_yaml(Path(record.path))
        if found is None:
            raise DatasetError(
                f"Dataset {name!r}: no data.yaml at {record.path} any more. Restore it, or "
                f"register the dataset again with: smalltrain datasets add {name} PATH"
            )
        return found

    def quick_fingerprint(self, path: str | os.PathLike[str]) -> str:
        """See the module-level ``quick_fingerprint``."""
        return quick_fingerprint(path)

    def changed_since(self, name: str, fingerprint: str | None = None) -> bool:
        """Whether dataset ``name`` changed on disk since it was registered.

        Args:
            fingerprint: compare with this quick fingerprint instead of the registered one
                (e.g. the one a job recorded when it started).
        """
        record = self.get(name)
        return quick_fingerprint(record.path) != (fingerprint or record.quick_fingerprint)
