"""Detection results (per-class table, confusion matrix, PR curves, worst images): the one
validation call of every face, and what a model's folder holds.

The detect task computes them once, at the end of training (``tasks.detect.results``), and
registration copies them into ``<model>/results/``. ``validate_detector`` computes them again
for ``smalltrain val``, the Models tab's Validate button and Python: for a registered model on
its own dataset into its folder (a new bundle replaces the old one only once it is complete),
else into the folder given. ``model_results`` reads what a model has, and why it has none.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smalltrain import paths
from smalltrain.engine.fsutil import replace_folder
from smalltrain.errors import WrongModelKind
from smalltrain.service.exports import find_model, verified_weights
from smalltrain.store.datasets import DatasetStore
from smalltrain.store.db import JobStore
from smalltrain.store.models import ModelInfo
from smalltrain.tasks.detect.results_files import RESULTS_DIR, listed_files, read_results

__all__ = ["ModelResults", "model_results", "no_results_note", "results_file", "validate_detector"]


@dataclass(frozen=True)
class ModelResults:
    """A model's results bundle (``data`` is its results.json) or why there is none."""

    model: str  # DATASET/NAME
    folder: Path  # <model>/results
    data: dict[str, Any] | None
    missing: str = ""  # why training left none (its error), when it said so

    def note(self) -> str:
        """The empty state, in words, with the two ways to compute the results."""
        return no_results_note(self.model, self.missing)


def no_results_note(model: str, missing: str = "") -> str:
    """What a page or the CLI says when a model has no results bundle."""
    why = f" ({missing})" if missing else ""
    return (
        f"No results for this model{why}: run `smalltrain val {model}` or press the Validate "
        "button in the Models tab."
    )


def _missing(info: ModelInfo) -> str:
    try:
        metrics = json.loads((info.path / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    return str(metrics.get("results_missing") or "") if isinstance(metrics, dict) else ""


def _detection(info: ModelInfo) -> ModelInfo:
    if info.task and info.task != "detect":
        raise WrongModelKind(
            f"{info.dataset}/{info.name} is an {info.task} model; detection results are for "
            "detection models"
        )
    return info


def model_results(home: Path, model: str | ModelInfo) -> ModelResults:
    """The results kept in a registered detection model's folder.

    Raises:
        ModelNotFound, WrongModelKind.
    """
    info = _detection(find_model(Path(home), model))
    label = f"{info.dataset}/{info.name}"
    data = read_results(info.path)
    return ModelResults(label, info.path / RESULTS_DIR, data, "" if data else _missing(info))


def results_file(home: Path, model: str | ModelInfo, name: str) -> Path:
    """A file of a model's bundle that its results.json lists (``worst/01-x.png``), never any
    other name, link or path outside the folder.

    Raises:
        FileNotFoundError, ModelNotFound, WrongModelKind.
    """
    found = model_results(home, model)
    if found.data is None or name not in listed_files(found.data):
        raise FileNotFoundError(f"{name}: no such file")
    root = found.folder.resolve()
    target = (found.folder / name).resolve()
    if (
        not target.is_relative_to(root)
        or not target.is_file()
        or (found.folder / name).is_symlink()
    ):
        raise FileNotFoundError(f"{name}: no such file")
    return target


def validate_detector(
    home: Path,
    model: str | ModelInfo | Path,
    data_yaml: Path | None = None,
    *,
    out: Path | None = None,
    imgsz: int | None = None,
    device: str = "",
    keep: bool = True,
) -> dict[str, Any]:
    """Validate a detector and write its results bundle; returns ``validate``'s metrics with
    ``results`` (results.json's contents) and ``folder`` (where the bundle is).

    Args:
        model: a registered model (``DATASET/NAME`` or its ModelInfo), or a weights path
            (local users only: the CLI and Python).
        data_yaml: the dataset; default: the registered model's own dataset.
        out: where the bundle goes; default: ``<model>/results`` for a registered model on its
            own dataset, else ``./val-results``.
        keep: False: compute in a temporary folder and keep no files (``val --json`` on
            another dataset without ``--out``); ``folder`` is then None.

    Raises:
        ModelNotFound, WrongModelKind, CheckpointError (weights changed), DatasetError.
    """
    from smalltrain.tasks.detect.predict import validate

    home = Path(home)
    if isinstance(model, Path):
        info, weights = None, model
    else:
        info = _detection(find_model(home, model))
        weights = verified_weights(info)
    own = data_yaml is None
    if data_yaml is None:
        if info is None:
            raise ValueError("give the dataset (a data.yaml) to validate a weights file on")
        data_yaml = DatasetStore(JobStore(paths.db_path(home))).get_data_yaml_path(info.dataset)
    if out is None:
        out = info.path / RESULTS_DIR if (info is not None and own) else Path("val-results")
    parent = out.parent if keep else paths.cache_dir(home)
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tmp-results-", dir=parent))
    try:
        metrics = validate(
            weights, data_yaml, imgsz=imgsz, device=device, home=home, results_dir=staging
        )
        if keep:
            replace_folder(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    metrics["folder"] = str(out) if keep else None
    return metrics
