"""Registered datasets: ``DatasetStore`` keeps ``DatasetRecord``s by name.

A record (built by the service, which inspects the dataset with its task:
``smalltrain.service.datasets.register_dataset``) holds:

- ``summary``: the task report's ``to_dict()`` with lists of records replaced by their
  lengths, plus headline counts (audio: files, duration_s, sample_rates, channels; detect:
  images, classes, instances, names, images_per_split...);
- ``snapshot``: the original one-line text, e.g. "35 files, 12.5 min" or "200 images, 3 classes";
- ``fingerprint``: the task's content fingerprint (what a trained model records);
- ``quick_fingerprint``: sizes and mtimes of the file tree only (no content reads), cheap
  enough to check before every job: ``changed_since(name)`` warns when a dataset changed after
  it was registered.

The user's files are never touched: ``remove`` forgets the name only.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from smalltrain.errors import DatasetError, DatasetNotFound, shorten
from smalltrain.paths import find_data_yaml
from smalltrain.store.names import looks_like_path, validate_name
from smalltrain.store.records import DatasetRecord

if TYPE_CHECKING:
    from smalltrain.store.db import JobStore

__all__ = ["DatasetRecord", "DatasetStore", "quick_fingerprint"]

# Files that tools write into a dataset folder without changing its content (Ultralytics'
# labels.cache, Finder's .DS_Store): they must not make a dataset look changed.
_IGNORED_SUFFIXES = (".cache", ".tmp")


def quick_fingerprint(path: str | os.PathLike[str]) -> str:
    """A fast fingerprint of a dataset: relative paths, sizes and mtimes, no content reads.

    A folder is walked in sorted order (hidden files and ``*.cache`` skipped, and names that
    are not valid UTF-8, which inspection skips too); a file (a data.yaml) stands for the
    folder that holds it. A missing path gives ``"missing"``.
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
            try:
                digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            except UnicodeEncodeError:
                continue  # a name that is not UTF-8: skipped, as inspection skips it
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

    def add(self, record: DatasetRecord) -> DatasetRecord:
        """Store ``record`` under its name, replacing an older one of that name.

        Inspecting a dataset to build the record is the service's job
        (``smalltrain.service.datasets.register_dataset``); the store only keeps it.

        Raises:
            InvalidName: the name is unsafe.
        """
        validate_name(record.name, "dataset name")
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
            # Never suggest a command that would itself be rejected ("datasets add .. PATH").
            hint = (
                "Register a dataset with: smalltrain datasets add NAME PATH"
                if looks_like_path(name)
                else f"Register it with: smalltrain datasets add {name} PATH"
            )
            raise DatasetNotFound(
                f"No dataset named {shorten(name)!r} (registered: {known}). {hint}"
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
