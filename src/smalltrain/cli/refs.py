"""What every "use" command accepts as MODEL, and the check that it is the right kind.

``generate``, ``reconstruct``, ``interpolate``, ``evaluate``, ``predict`` and ``val`` all take
one of (in this order):

1. a file or folder that holds a model: a ``.pt``, a run folder, a registered model's folder;
2. ``DATASET/NAME``: a registered model;
3. ``NAME``: a registered model (when only one dataset has a model of that name);
4. ``DATASET``: that dataset's active model;
5. any other existing path (its loader then says what is missing);
6. ``NAME.pt``: a file of the weights folder (``smalltrain weights add``), as ``base_model``
   names one.

The registry knows each model's task, and files and run folders are peeked at (without
running them), so a model of the wrong kind gets "X is an audio model; predict needs a
detection model" instead of an unreadable-checkpoint error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smalltrain import paths
from smalltrain.cli.common import home
from smalltrain.errors import DatasetNotFound, ModelNotFound, WrongModelKind

__all__ = ["MODEL_HELP", "ModelRef", "resolve_model"]

MODEL_HELP = (
    "A registered model (NAME or DATASET/NAME), a dataset (its active model), a run folder, "
    "a model folder, a .pt file, or the name of a file in the weights folder."
)


@dataclass(frozen=True)
class ModelRef:
    """A resolved MODEL argument."""

    path: Path  # the file or folder handed to the task's "use" API
    task: str | None  # "audio", "detect", or None when it cannot be told
    label: str  # how to name it in messages
    info: Any = None  # the registry's ModelInfo, for a registered model
    dataset: str | None = None  # the dataset it was registered for, when known


def _models() -> Any:
    from smalltrain.store import ModelStore

    return ModelStore(paths.models_dir(home()))


def _registered(ref: str) -> ModelRef | None:
    """``DATASET/NAME``, a unique ``NAME``, or ``DATASET`` (its active model); None if none."""
    store = _models()
    dataset, _, name = ref.rpartition("/")
    if dataset and dataset not in store.datasets():
        return None
    matches = [m for m in store.list(dataset or None) if m.name == name]
    if len(matches) > 1:
        options = ", ".join(f"{m.dataset}/{m.name}" for m in matches)
        raise ModelNotFound(f"model name {name!r} is ambiguous; use one of: {options}")
    if matches:
        m = matches[0]
        return ModelRef(m.path, m.task or None, f"{m.dataset}/{m.name}", m, m.dataset)
    if dataset:
        return None
    return _active_of(ref)


def _registered_weights(ref: str) -> ModelRef | None:
    """A file of the weights folder named by its bare name (``yolov8s.pt``), or None."""
    from smalltrain.tasks import model_kind
    from smalltrain.tasks.detect.offline import resolve_base_model

    if not ref.strip() or Path(ref).name != ref:
        return None
    if not (paths.weights_dir(home()) / ref).is_file():
        return None
    # checked as base_model is: its recorded sha256, and that it is a checkpoint at all
    path = Path(resolve_base_model(ref, home()))
    return ModelRef(path, model_kind(path), f"{ref} (in the weights folder)")


def _active_of(dataset: str) -> ModelRef | None:
    """The active model of the dataset ``dataset`` (registered or with models), or None."""
    from smalltrain.store.datasets import DatasetStore
    from smalltrain.store.db import JobStore

    store = _models()
    known = dataset in store.datasets()
    registered = False
    db = paths.db_path(home())
    if db.exists():
        try:
            DatasetStore(JobStore(db)).get(dataset)
            registered = True
        except (DatasetNotFound, ValueError):
            pass
    if not known and not registered:
        return None
    active = store.get_active(dataset) if known else None
    if active is None:
        # only suggest commands that would be accepted: training needs a registered dataset
        train = f"Train one with: smalltrain train {dataset}, or a" if registered else "A"
        raise ModelNotFound(
            f"dataset {dataset!r} has no active model yet. {train}ctivate one with: "
            f"smalltrain models activate NAME --dataset {dataset}"
        )
    label = f"{dataset}/{active.name} (the active model of {dataset!r})"
    return ModelRef(active.path, active.task or None, label, active, dataset)


def resolve_model(ref: str, *, need: str | None = None, command: str = "") -> ModelRef:
    """Resolve a MODEL argument (see the module docstring) and check its kind.

    Args:
        need: the task the command needs ("audio", "detect"); None accepts any.
        command: the command's name, for the wrong-kind message.

    Raises:
        ModelNotFound: nothing of that name or path; the message lists what is accepted.
        WrongModelKind: it is a model of another task.
    """
    from smalltrain.tasks import kind_words, model_kind

    path = Path(ref).expanduser()
    kind = model_kind(path) if path.exists() else None
    registered = None
    if kind is None and ref.count("/") <= 1 and ref.strip():
        # "kicks" may be a registered name and also a folder of sounds in the working dir
        registered = _registered(ref)
    if registered is not None:
        found = registered
    elif path.exists():
        found = ModelRef(path, kind, str(path))
    elif (weights := _registered_weights(ref)) is not None:
        found = weights
    else:
        raise ModelNotFound(
            f"{ref!r} is not a file, a folder, a registered model or a dataset with an "
            "active model. List models with: smalltrain models list"
        )
    if need is not None and found.task is not None and found.task != need:
        have = kind_words(found.task)
        raise WrongModelKind(
            f"{found.label} is {have} model; {command or 'this command'} needs "
            f"{kind_words(need)} model"
        )
    return found
