"""The train form's settings: which fields it shows up front, what it remembers per dataset,
and the YAML files it exports and imports.

**Remembered** (``<home>/ui/settings/<dataset>.json``): the preset, the fields that differ from
the preset's values (``overrides``) and the model name; written on every valid change, so a
reload, another browser or a restarted server shows the same form. Keeping overrides instead of
the whole config lets the preset follow the dataset as it grows.

**YAML files** hold exactly a task ``TrainingConfig.to_dict()`` (comments name the task and the
dataset), the format ``smalltrain train --config FILE`` reads.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from smalltrain.engine.fsutil import atomic_write_json
from smalltrain.errors import ConfigError
from smalltrain.store.names import validate_name

__all__ = [
    "MAIN_FIELDS",
    "form_advice",
    "PRESETS",
    "SettingsStore",
    "diff",
    "dump_yaml",
    "load_yaml",
    "split_fields",
]

_SET = re.compile(r"--set ([A-Za-z_][A-Za-z0-9_]*)=([^\s,;)]+)")


def form_advice(text: str, task: str) -> str:
    """Advice written for the CLI, in the Train form's words: ``--set epochs=80`` becomes
    ``the Train tab's "Epochs" field: 80``; a field that has no input there is named in the
    Advanced settings YAML."""
    labels = dict(MAIN_FIELDS.get(task, []))

    def field(m: re.Match[str]) -> str:
        name, value = m.group(1), m.group(2)
        if name in labels:
            return f'the Train tab\'s "{labels[name]}" field: {value}'
        return f'"{name}: {value}" in the Train tab\'s Advanced settings (YAML)'

    return _SET.sub(field, text)


#: The fields shown as inputs, per task: (field, label); every other field is in the YAML box.
MAIN_FIELDS: dict[str, list[tuple[str, str]]] = {
    "audio": [
        ("epochs", "Epochs"),
        ("batch_size", "Batch size"),
        ("learning_rate", "Learning rate"),
        ("latent_dim", "Latent floats per chunk"),
        ("early_stopping_patience", "Early stop patience (0 = off)"),
        ("preview_every", "Preview every N epochs (0 = off)"),
        ("seed", "Seed"),
        ("device", "Device (auto, cpu, cuda, mps)"),
    ],
    "detect": [
        ("base_model", "Base model (.pt, weights name or .yaml)"),
        ("epochs", "Epochs"),
        ("batch_size", "Batch size"),
        ("image_size", "Image size (px)"),
        ("lr0", "Learning rate (lr0)"),
        ("patience", "Early stop patience"),
        ("freeze_layers", "Frozen backbone layers"),
        ("seed", "Seed"),
    ],
}
#: The presets each task offers (auto first).
PRESETS: dict[str, list[str]] = {
    "audio": ["auto", "tiny", "small", "medium"],
    "detect": ["auto", "ultralytics", "classic"],
}
SLOTS = max(len(v) for v in MAIN_FIELDS.values())


def as_text(value: Any) -> str:
    """A field value as the form shows it in a text input."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(as_text(v) for v in value)
    return str(value)


def split_fields(task: str, config: Mapping[str, Any]) -> tuple[list[tuple[str, str, str]], str]:
    """The form of a config: ``[(field, label, text value)]`` for the inputs and the YAML
    of every other field."""
    main = [(f, label, as_text(config[f])) for f, label in MAIN_FIELDS.get(task, []) if f in config]
    shown = {f for f, _, _ in main}
    rest = {k: v for k, v in config.items() if k not in shown}
    return main, yaml.safe_dump(rest, sort_keys=False, allow_unicode=True) if rest else ""


def parse_advanced(text: str) -> dict[str, Any]:
    """The advanced YAML box as a dict.

    Raises:
        ConfigError: it is not YAML, or not a mapping of field names to values.
    """
    if not text.strip():
        return {}
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "YAML"
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError("advanced settings", where, f"not valid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError("advanced settings", type(data).__name__, "must be 'field: value' lines")
    return {str(k): v for k, v in data.items()}


def diff(config: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``config`` whose value differs from ``base`` (the preset's)."""
    return {k: v for k, v in config.items() if base.get(k) != v}


def dump_yaml(task: str, dataset: str, config: Mapping[str, Any]) -> str:
    """A settings file: the config's fields, under comments naming task and dataset."""
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    return (
        f"# smalltrain {task} training settings for dataset {dataset!r} ({stamp}).\n"
        f"# Train with them: smalltrain train {dataset} --config <this file>\n"
        + yaml.safe_dump(dict(config), sort_keys=False, allow_unicode=True)
    )


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a settings file (a mapping of config fields).

    Raises:
        ConfigError: unreadable, not YAML, or not a mapping.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError("settings file", Path(path).name, f"cannot be read ({e})") from None
    data = parse_advanced(text)
    if not data:
        raise ConfigError("settings file", Path(path).name, "holds no settings")
    return data


class SettingsStore:
    """Remembered train settings, one JSON file per dataset, plus the last dataset used."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, dataset: str) -> Path:
        return self.folder / f"{validate_name(dataset, 'dataset name')}.json"

    def get(self, dataset: str) -> dict[str, Any]:
        """``{"preset", "overrides", "model_name"}`` remembered for ``dataset`` (defaults if
        none, or if the file is unreadable: a broken file never blocks the form)."""
        default: dict[str, Any] = {"preset": "auto", "overrides": {}, "model_name": ""}
        try:
            data = json.loads(self._path(dataset).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return default
        if not isinstance(data, dict) or not isinstance(data.get("overrides", {}), dict):
            return default
        return {**default, **{k: data[k] for k in default if k in data}}

    def save(
        self, dataset: str, preset: str, overrides: Mapping[str, Any], model_name: str
    ) -> None:
        """Remember the form of ``dataset`` (atomically) and that it was the last one used."""
        data = {"preset": preset, "overrides": dict(overrides), "model_name": model_name}
        atomic_write_json(self._path(dataset), {**data, "saved_at": dt.datetime.now().isoformat()})
        self.set_last(dataset)

    def forget(self, dataset: str) -> None:
        """Drop what is remembered for ``dataset`` (it was removed)."""
        self._path(dataset).unlink(missing_ok=True)

    def last(self) -> str | None:
        """The dataset the form showed last, or None."""
        try:
            value = json.loads((self.folder / ".last.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return value.get("dataset") if isinstance(value, dict) else None

    def set_last(self, dataset: str) -> None:
        atomic_write_json(self.folder / ".last.json", {"dataset": dataset})
