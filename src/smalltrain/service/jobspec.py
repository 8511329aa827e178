"""``JobSpec``: what to train, as every face gives it, and who gives it (``Origin``).

The CLI builds a ``JobSpec`` from its flags, the Python API takes one, and the web UI and the
HTTP API build one with ``JobSpec.from_dict`` from a request. Each then starts the job through
the same call, ``TrainingManager.start_training`` (``service.planning.plan_job`` inside), so
every rule holds for all four.

An ``Origin`` says how far the spec is trusted. ``"local"`` is the user at this machine (the
CLI, the Python API): a path to weights or a run folder is theirs to give. ``"remote"`` is
whatever reaches the local server (the web UI, the HTTP API), which a web page or another
account may drive: no path to code (weights) and no run folder (see ``service.weights``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from smalltrain.errors import ConfigError, shorten

__all__ = ["Origin", "JobSpec", "config_dict"]

Origin = Literal["local", "remote"]

#: The longest dataset reference (a name or a path) a spec may hold; the longest path Linux
#: takes is 4096 bytes, and a longer one would only fail later, deep in the file system.
MAX_REF = 4096


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
        config: a ready task config (or its dict) instead of an adaptive one; ``overrides``
            are applied on top of it.
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

    @classmethod
    def from_dict(cls, data: Any) -> JobSpec:
        """A spec from a request's JSON object, checked field by field.

        Raises:
            ConfigError: ``data`` is not an object; it has fields a spec has not (named); it
                has no ``dataset``; a field has the wrong type (named: ``"config": "x"`` is a
                ``config`` error). Messages quote at most ~100 characters of a value.
        """
        if not isinstance(data, Mapping):
            raise ConfigError("job spec", shorten(data), "must be an object of JobSpec fields")
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            names = ", ".join(unknown)
            values = {k: data[k] for k in data if str(k) in unknown}
            raise ConfigError(
                names,
                values[unknown[0]] if len(unknown) == 1 else values,
                f"not {'a field' if len(unknown) == 1 else 'fields'} of a job; a job has: "
                f"{', '.join(known)}",
            )
        if data.get("dataset") is None:
            raise ConfigError("dataset", None, _RULES["dataset"][1])
        for name, value in data.items():
            _check_type(name, value)
        return cls(**{k: v for k, v in data.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        """Plain values (paths as strings, a config object as its dict): ``from_dict`` reads it
        back, so a spec crosses to a child process."""
        return {
            "dataset": os.fspath(self.dataset),
            "task": self.task,
            "model_name": self.model_name,
            "preset": self.preset,
            "overrides": dict(self.overrides),
            "config": None if self.config is None else config_dict(self.config),
            "device": self.device,
            "run_dir": None if self.run_dir is None else os.fspath(self.run_dir),
            "priority": self.priority,
        }


def _is_object(value: Any) -> bool:
    return isinstance(value, Mapping) and all(isinstance(k, str) for k in value)


#: Each field's type check and what to say when it fails; any other field is a string.
_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "dataset": (
        lambda v: isinstance(v, str) and bool(v.strip()) and len(v) <= MAX_REF,
        f"give a registered dataset name or a path (a string of at most {MAX_REF} characters)",
    ),
    "overrides": (_is_object, "must be an object of field: value"),
    "config": (_is_object, "must be an object of field: value (a task config)"),
    "priority": (
        lambda v: isinstance(v, int) and not isinstance(v, bool),
        "must be a whole number (higher runs first)",
    ),
    "preset": (lambda v: isinstance(v, str) and bool(v), "must be a preset name such as auto"),
}


def _check_type(name: str, value: Any) -> None:
    """Refuse a value of the wrong type, naming its own field (null: the default)."""
    if value is None and name != "dataset":
        return
    ok, rule = _RULES.get(name, (lambda v: isinstance(v, str), "must be a string"))
    if not ok(value):
        raise ConfigError(name, value, rule)


def config_dict(config: Any) -> dict[str, Any]:
    """A task config object (or a dict) as a plain dict of its fields."""
    if hasattr(config, "to_dict"):
        return dict(config.to_dict())
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    return dict(config)
