"""Registry of training tasks by name (built-in, or extra ones from ``$SMALLTRAIN_EXTRA_TASKS``),
and dataset kind detection."""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

from smalltrain.engine.context import Task
from smalltrain.engine.ptinfo import peek, stub_name
from smalltrain.errors import DatasetError
from smalltrain.paths import find_data_yaml

# name -> "module:attribute" of a zero-argument Task factory; imported lazily so that the
# audio task never pays for importing Ultralytics and vice versa.
_TASKS: dict[str, str] = {
    "audio": "smalltrain.tasks.audio.task:AudioTask",
    "detect": "smalltrain.tasks.detect.task:DetectTask",
}

#: Extra tasks as "name=module:Factory,..."; every process (children included) reads it on start.
EXTRA_TASKS_ENV = "SMALLTRAIN_EXTRA_TASKS"


def kind_words(task: str | None) -> str:
    """A task's models in words, with the article: "an audio", "a detection" ("this" when
    unknown); every face's wrong-kind and export messages say it the same way."""
    if not task:
        return "this"
    return {"audio": "an audio", "detect": "a detection"}.get(task, f"a {task}")


AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff", ".aifc"})


def register_task(name: str, target: str) -> None:
    """Register a task factory given as ``"package.module:Factory"``."""
    _TASKS[name] = target


def register_extra_tasks(value: str | None = None) -> list[str]:
    """Register tasks named in ``$SMALLTRAIN_EXTRA_TASKS`` ("name=module:Factory,...").

    Child processes call this on start, so a task registered this way in the parent (plugins,
    the test suite's toy task) is also known to the child.

    Returns:
        The names registered.
    """
    text = os.environ.get(EXTRA_TASKS_ENV, "") if value is None else value
    names = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, target = item.partition("=")
        if not sep or ":" not in target:
            raise ValueError(f"{EXTRA_TASKS_ENV}: {item!r} must look like name=module:Factory")
        register_task(name.strip(), target.strip())
        names.append(name.strip())
    return names


def task_names() -> list[str]:
    return sorted(_TASKS)


def task_factory(name: str) -> Any:
    """The zero-argument factory (usually the class) of a task, imported but not called.

    Raises:
        KeyError: no task of this name.
    """
    if name not in _TASKS:
        raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(task_names())}")
    module_name, _, attr = _TASKS[name].partition(":")
    return getattr(importlib.import_module(module_name), attr)


def get_task(name: str) -> Task:
    """Return a task instance by name.

    Raises:
        KeyError: no task of this name.
    """
    task: Task = task_factory(name)()
    return task


def detect_kind(path: str | Path) -> str:
    """Tell which task a dataset path is for: "detect" (a YOLO yaml) or "audio".

    Raises:
        DatasetError: the path does not exist or holds neither kind.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise DatasetError(f"{p}: no such file or folder. Check the path and try again.")
    if find_data_yaml(p) is not None:
        return "detect"
    if p.is_dir():
        for f in p.rglob("*"):
            if f.suffix.lower() in AUDIO_EXTENSIONS and not f.name.startswith("."):
                return "audio"
    raise DatasetError(
        f"{p}: not a dataset smalltrain knows. Give a folder of audio files "
        f"({', '.join(sorted(AUDIO_EXTENSIONS))}) or a YOLO data.yaml (or a folder holding one)."
    )


# Files a model or run folder holds its weights in, per layout (run folder, model folder...).
_WEIGHT_FILES = ("export/best.pt", "weights/best.pt", "best.pt")


def _kind_of_file(path: Path) -> str | None:
    try:
        data = peek(path)  # no torch, and nothing from the file runs
    except (OSError, ValueError):
        return None
    return kind_of_checkpoint(data)


def kind_of_checkpoint(data: Any) -> str | None:
    """Which task a peeked checkpoint (``engine.ptinfo.peek``) belongs to, or None."""
    if not isinstance(data, dict):
        return None
    if "model_args" in data and "model_state" in data:
        return "audio"
    ultralytics = any(stub_name(data.get(k)).startswith("ultralytics") for k in ("model", "ema"))
    if "train_args" in data or ultralytics:
        return "detect"
    return None


def model_kind(path: str | Path) -> str | None:
    """Which task a model file or folder belongs to ("audio", "detect"), or None if unknown.

    Folders: a registered model folder (its ``registry_entry.json``), a detection run
    (``ultralytics/``), or whatever its best.pt is. Files are peeked at without running them.
    """
    p = Path(path).expanduser()
    if p.is_file():
        return _kind_of_file(p)
    if not p.is_dir():
        return None
    try:
        task = json.loads((p / "registry_entry.json").read_text(encoding="utf-8")).get("task")
        if task:
            return str(task)
    except (OSError, ValueError, AttributeError):
        pass
    if (p / "ultralytics").is_dir():
        return "detect"
    for name in _WEIGHT_FILES:
        if (p / name).is_file():
            return _kind_of_file(p / name)
    checkpoints = sorted((p / "checkpoints").glob("*.pt")) if (p / "checkpoints").is_dir() else []
    return _kind_of_file(checkpoints[-1]) if checkpoints else None
