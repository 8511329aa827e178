"""``ModelStore``: trained models on disk, in the original registry layout.

Layout under ``root`` (``$SMALLTRAIN_HOME/models``)::

    <dataset>/registry.json              {"active": name | null, "models": {name: {...}}}
    <dataset>/.registry.lock             inter-process lock (never delete it while in use)
    <dataset>/models/<name>/weights/best.pt
    <dataset>/models/<name>/config.yaml  the training config
    <dataset>/models/<name>/metrics.json final metrics (non-finite floats as "nan"/"inf")
    <dataset>/models/<name>/registry_entry.json  a copy of its registry entry (for rebuilds)
    <dataset>/models/<name>/...          extra files (previews/ for audio)

A registry entry holds the original fields (``created`` as ISO-8601 UTC with ``Z``,
``base_model``, ``epochs_completed``, the headline metric under its own key — ``best_map50``
for detection, ``best_val_loss`` for audio — and ``dataset_snapshot``) plus ``task``,
``job_id``, ``weights_sha256``, ``weights_size``, ``dataset_fingerprint``, ``versions`` and
``headline_metric`` (the headline key's name).

Crash safety: a model folder is assembled in a hidden temporary folder beside its final place
and renamed into place before the registry names it; registry.json is rewritten atomically
(``fsutil``) under ``FileLock(<dataset>/.registry.lock)``, reading, changing and writing it
inside the lock. A crash therefore leaves at worst an unregistered model folder, never a
registry entry without its files. A registry.json broken by hand raises ``RegistryCorrupt``
and nothing is changed; other datasets keep working. ``rebuild_registry(dataset)`` rebuilds it
from the model folders (their ``registry_entry.json`` copies), keeping the broken file aside.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from smalltrain.engine.fsutil import (
    atomic_write_json,
    disk_full_error,
    is_disk_full,
    sha256_file,
)
from smalltrain.engine.locks import FileLock
from smalltrain.engine.plain import plain
from smalltrain.errors import ModelExists, ModelNotFound, RegistryCorrupt
from smalltrain.store.model_folder import ENTRY, WEIGHTS, entry_from, entry_job, fill, tree_size
from smalltrain.store.model_info import ModelEntry, ModelInfo, utc_now
from smalltrain.store.names import validate_name

__all__ = ["ModelEntry", "ModelInfo", "ModelStore"]

log = logging.getLogger(__name__)

REGISTRY = "registry.json"
LOCK = ".registry.lock"


class ModelStore:
    """Trained models per dataset, with ``registry.json`` as the index.

    Args:
        root: the models folder, normally ``$SMALLTRAIN_HOME/models``.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    # -- paths and registry I/O -------------------------------------------------------------

    def _dataset_dir(self, dataset: str) -> Path:
        return self.root / validate_name(dataset, "dataset name")

    def _models_dir(self, dataset: str) -> Path:
        return self._dataset_dir(dataset) / "models"

    def model_dir(self, dataset: str, name: str) -> Path:
        """The folder of a model (it may not exist)."""
        return self._dataset_dir(dataset) / "models" / validate_name(name, "model name")

    def registry_path(self, dataset: str) -> Path:
        return self._dataset_dir(dataset) / REGISTRY

    def read_registry(self, dataset: str) -> dict[str, Any]:
        """The registry of a dataset (an empty one if the file does not exist yet).

        Raises:
            RegistryCorrupt: the file is not valid JSON or not a registry.
        """
        path = self.registry_path(dataset)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"active": None, "models": {}}
        advice = (
            f"Your models are still in {path.parent / 'models'}/. Fix the file by hand, or "
            f"rebuild it from the model folders with ModelStore.rebuild_registry({dataset!r})."
        )
        try:
            data = json.loads(text)
        except ValueError as e:
            raise RegistryCorrupt(f"{path} is not valid JSON ({e}). {advice}") from None
        if not isinstance(data, dict) or not isinstance(data.get("models", {}), dict):
            raise RegistryCorrupt(f"{path} is not a model registry (no 'models' map). {advice}")
        data.setdefault("models", {})
        data.setdefault("active", None)
        return data

    @contextlib.contextmanager
    def _editing(
        self, dataset: str, undo: builtins.list[Callable[[], None]] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Hold the dataset's lock, yield its registry, and write it back atomically on success.

        If that write fails (a full disk), the functions in ``undo`` run, newest first, still
        under the lock, so what was changed beside the registry is put back."""
        folder = self._dataset_dir(dataset)
        folder.mkdir(parents=True, exist_ok=True)
        with FileLock(folder / LOCK):
            registry = self.read_registry(dataset)
            yield registry
            try:
                atomic_write_json(folder / REGISTRY, registry, what="model registry")
            except BaseException:
                for step in reversed(undo or []):
                    step()
                raise

    def update_registry(self, dataset: str, change: Callable[[dict[str, Any]], None]) -> None:
        """Apply ``change`` to the registry under the lock and write it atomically."""
        with self._editing(dataset) as registry:
            change(registry)

    # -- save -------------------------------------------------------------------------------

    def save(self, entry: ModelEntry, *, overwrite: bool = False) -> ModelInfo:
        """Copy a trained model (``entry.weights`` and ``entry.extra_files``) into the store and
        register it under ``entry.dataset``/``entry.name``.

        Args:
            overwrite: replace a model of the same name (else ``ModelExists``).

        Raises:
            InvalidName, ModelExists, RegistryCorrupt, FileNotFoundError (no weights),
            DiskFull (nothing is registered and the partial copy is removed).
        """
        dataset, name, job_id = entry.dataset, entry.name, entry.job_id
        folder = self.model_dir(dataset, name)
        source = Path(entry.weights)
        if not source.is_file():
            raise FileNotFoundError(f"{source}: weights file not found; nothing was saved")
        if not overwrite:
            self._refuse_existing(dataset, name, folder, job_id=job_id)
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=folder.parent))
        except OSError as exc:
            if is_disk_full(exc):
                raise disk_full_error(folder, tree_size(source), exc, what="model folder") from exc
            raise
        try:
            fill(staging, source, entry.config, entry.metrics, dict(entry.extra_files))
            record = self._record(entry, staging)
            atomic_write_json(staging / ENTRY, record)
            undo: builtins.list[Callable[[], None]] = []
            with self._editing(dataset, undo) as registry:
                if not overwrite:
                    self._refuse_existing(dataset, name, folder, registry, job_id=job_id)
                old = self._swap_in(staging, folder)
                undo.append(lambda: self._swap_back(staging, folder, old))
                registry["models"][name] = record
                active = registry.get("active") == name
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if old is not None:  # only once the registry names the new folder
            shutil.rmtree(old, ignore_errors=True)
        return ModelInfo.from_entry(dataset, name, record, self._models_dir(dataset), active)

    @staticmethod
    def _record(entry: ModelEntry, staging: Path) -> dict[str, Any]:
        """The registry fields of ``entry``, whose files are staged in ``staging``."""
        key, value = entry.headline
        record: dict[str, Any] = {
            **{k: plain(v) for k, v in entry.fields.items()},
            "created": utc_now(),
            "base_model": entry.base_model,
            "epochs_completed": int(entry.epochs_completed),
            key: None if value is None or not math.isfinite(value) else float(value),
            "dataset_snapshot": entry.dataset_snapshot,
            "task": entry.task,
            "job_id": entry.job_id,
            "weights_sha256": sha256_file(staging / WEIGHTS),
            "weights_size": (staging / WEIGHTS).stat().st_size,
            "dataset_fingerprint": entry.dataset_fingerprint,
            "versions": dict(entry.versions),
            "headline_metric": key,
        }
        if entry.headline_mode:
            record["headline_mode"] = entry.headline_mode
        return record

    def _refuse_existing(
        self,
        dataset: str,
        name: str,
        folder: Path,
        registry: dict[str, Any] | None = None,
        *,
        job_id: str | None = None,
    ) -> None:
        registry = registry if registry is not None else self.read_registry(dataset)
        if name in registry["models"]:
            raise ModelExists(
                f"A model named {name!r} already exists for dataset {dataset!r}. Choose another "
                "name, or pass overwrite=True (--overwrite) to replace it."
            )
        if folder.exists() and not (job_id and entry_job(folder) == job_id):
            # (A folder this very job left unregistered, killed mid-registration, is replaced.)
            raise ModelExists(
                f"{folder} exists but is not in {dataset}/registry.json. Move it away, or pass "
                "overwrite=True (--overwrite) to replace it."
            )

    @staticmethod
    def _swap_in(staging: Path, folder: Path) -> Path | None:
        """Rename the staged folder into place; return where an old one was moved aside."""
        old: Path | None = None
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".old-{folder.name}-", dir=folder.parent))
            os.replace(folder, old / folder.name)
        os.replace(staging, folder)
        return old

    @staticmethod
    def _swap_back(staging: Path, folder: Path, old: Path | None) -> None:
        """Undo ``_swap_in``: the new folder goes back to ``staging``, the old one into place."""
        os.replace(folder, staging)
        if old is not None:
            os.replace(old / folder.name, folder)
            shutil.rmtree(old, ignore_errors=True)

    # -- queries ----------------------------------------------------------------------------

    def find_by_job(self, dataset: str, job_id: str) -> ModelInfo | None:
        """The model a job registered for ``dataset``, or None (registration is one per job)."""
        registry = self.read_registry(dataset)
        for name, entry in registry["models"].items():
            if isinstance(entry, dict) and entry.get("job_id") == job_id:
                return ModelInfo.from_entry(
                    dataset, name, entry, self._models_dir(dataset), registry["active"] == name
                )
        return None

    def get(self, dataset: str, name: str) -> ModelInfo:
        """The model ``name`` of ``dataset``.

        Raises:
            ModelNotFound (with the names that do exist), RegistryCorrupt, InvalidName.
        """
        validate_name(name, "model name")
        registry = self.read_registry(dataset)
        entry = registry["models"].get(name)
        if entry is None:
            known = ", ".join(sorted(registry["models"])) or "none"
            raise ModelNotFound(
                f"No model {name!r} for dataset {dataset!r} (models: {known}). "
                f"List them with: smalltrain models list {dataset}"
            )
        return ModelInfo.from_entry(
            dataset, name, entry, self._models_dir(dataset), registry["active"] == name
        )

    def list(self, dataset: str | None = None) -> list[ModelInfo]:
        """Models of one dataset, or of every dataset, oldest first per dataset.

        Reads only registry.json files. With ``dataset=None`` a corrupt registry is logged and
        skipped so the others still list; with a dataset it raises ``RegistryCorrupt``.
        """
        if dataset is not None:
            registry = self.read_registry(dataset)
            models_dir, active = self._models_dir(dataset), registry["active"]
            entries = sorted(registry["models"].items(), key=lambda kv: str(kv[1].get("created")))
            return [
                ModelInfo.from_entry(dataset, n, e, models_dir, active == n) for n, e in entries
            ]
        out: builtins.list[ModelInfo] = []
        for name in self.datasets():
            try:
                out += self.list(name)
            except RegistryCorrupt as e:
                log.warning("%s", e)
        return out

    def datasets(self) -> builtins.list[str]:
        """Names of the datasets that have a registry, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.parent.name for p in self.root.glob(f"*/{REGISTRY}"))

    def weights_path(self, dataset: str, name: str) -> Path:
        """The weights file of a registered model. Raises ``ModelNotFound``."""
        return self.get(dataset, name).weights

    def get_active(self, dataset: str) -> ModelInfo | None:
        """The active model of ``dataset``, or None."""
        registry = self.read_registry(dataset)
        name = registry.get("active")
        if not name or name not in registry["models"]:
            return None
        return ModelInfo.from_entry(
            dataset, name, registry["models"][name], self._models_dir(dataset), True
        )

    # -- changes ----------------------------------------------------------------------------

    def set_active(self, dataset: str, name: str | None) -> None:
        """Make ``name`` the active model of ``dataset`` (None clears it).

        Raises:
            ModelNotFound: no such model.
        """
        if name is not None:
            validate_name(name, "model name")
        with self._editing(dataset) as registry:
            if name is not None and name not in registry["models"]:
                known = ", ".join(sorted(registry["models"])) or "none"
                raise ModelNotFound(f"No model {name!r} for dataset {dataset!r} (models: {known})")
            registry["active"] = name

    def delete(self, dataset: str, name: str) -> bool:
        """Unregister a model and delete its folder; deleting the active model clears active.

        Returns False if there was neither an entry nor a folder.
        """
        folder = self.model_dir(dataset, name)
        if not self.registry_path(dataset).exists() and not folder.exists():
            return False
        trash: Path | None = None
        # The registry entry goes first, then the folder, both under the lock: a crash leaves
        # at worst an unregistered folder, and a concurrent save of the same name is never
        # left with its folder removed.
        with self._editing(dataset) as registry:
            known = registry["models"].pop(name, None) is not None
            if registry.get("active") == name:
                registry["active"] = None
        with FileLock(self._dataset_dir(dataset) / LOCK):
            if folder.exists() and name not in self.read_registry(dataset)["models"]:
                trash = Path(tempfile.mkdtemp(prefix=f".deleted-{name}-", dir=folder.parent))
                os.replace(folder, trash / name)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
        return known or trash is not None

    def rebuild_registry(self, dataset: str) -> builtins.list[str]:
        """Rebuild ``registry.json`` from the model folders; return the names registered.

        Each folder with ``weights/best.pt`` is registered from its ``registry_entry.json``
        (or, without one, from what the folder shows: weights hash and size, creation time).
        A readable registry keeps its ``active`` model and its entries for folders that still
        exist; an unreadable one is kept beside it as ``registry.json.corrupt-<time>``.
        """
        folder = self._dataset_dir(dataset)
        folder.mkdir(parents=True, exist_ok=True)
        with FileLock(folder / LOCK):
            try:
                old = self.read_registry(dataset)
            except RegistryCorrupt:
                old = {"active": None, "models": {}}
                stamp = utc_now().replace(":", "")
                os.replace(folder / REGISTRY, folder / f"{REGISTRY}.corrupt-{stamp}")
            models = {}
            base = folder / "models"
            for model in sorted(base.iterdir()) if base.is_dir() else []:
                if model.name.startswith(".") or not (model / WEIGHTS).is_file():
                    continue
                models[model.name] = old["models"].get(model.name) or entry_from(model)
            active = old.get("active") if old.get("active") in models else None
            atomic_write_json(
                folder / REGISTRY, {"active": active, "models": models}, what="model registry"
            )
        return sorted(models)
