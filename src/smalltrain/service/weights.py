"""Pretrained weights the user registered: ``<home>/weights/`` and its ``weights.json`` index,
and the rule for which weights a job may load (``check_weights``).

The detection task finds ``base_model=NAME`` in this folder (``tasks.detect.offline``), and
checks a registered file's sha256 before it loads it. ``WeightsStore.add`` checks a file
without running it (``engine.ptinfo``), copies it in atomically and records its sha256, size
and origin, so ``list`` can tell a file that changed since it was added. Files placed in the
folder by hand are listed too, as "not added".

A weights file is code: loading a pickled .pt runs whatever it holds. So a job started from
the web UI or the HTTP API (origin "remote") may name only a registered file, by name, whose
sha256 still matches; no config value of such a job may be a path. Only the user at this
machine (the CLI, the Python API) may give a path.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from smalltrain import paths
from smalltrain.engine.fsutil import atomic_write_json, new_file_mode, sha256_file
from smalltrain.engine.locks import FileLock
from smalltrain.errors import (
    ConfigError,
    InvalidName,
    ModelExists,
    WeightsNotFound,
    WrongModelKind,
    shorten,
)
from smalltrain.service.jobspec import Origin
from smalltrain.store.names import validate_name
from smalltrain.tasks import model_kind

__all__ = ["INDEX", "WeightsEntry", "WeightsStore", "check_weights", "is_path"]

INDEX = "weights.json"
_LOCK = ".weights.lock"
#: What to tell a user of the web UI or the HTTP API who named weights by path.
HOW_TO_REGISTER = (
    "register the file first (the web UI's Weights tab, `smalltrain weights add FILE`, or "
    "POST /api/weights) and give its name"
)


@dataclass(frozen=True)
class WeightsEntry:
    """One file of the weights folder.

    ``state``: "ok" (matches its recorded sha256), "changed" (it does not), "not added"
    (placed by hand, nothing recorded) or "missing" (recorded, file gone).
    """

    name: str
    path: str
    size: int
    sha256: str | None
    source: str | None
    added: str | None
    state: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class WeightsStore:
    """The weights folder of a smalltrain home."""

    def __init__(self, home: Path) -> None:
        self.folder = paths.weights_dir(Path(home))

    def _index(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads((self.folder / INDEX).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError:
            return {}  # a broken index only loses the recorded hashes; files stay usable
        return {str(k): dict(v) for k, v in data.items() if isinstance(v, dict)}

    def add(self, file: str | os.PathLike[str], name: str | None = None, *,
            replace: bool = False, source: str | None = None) -> WeightsEntry:  # fmt: skip
        """Copy ``file`` in as ``name`` (default: its file name) and record its sha256.

        ``source`` is what the index records as its origin (default: the file's path; an
        upload says so instead of naming a temporary file).

        Raises:
            InvalidName: ``name`` is not a safe file name, or does not end in .pt.
            WrongModelKind: the file is not a detection checkpoint (an audio model...).
            ModelExists: a file of that name is there already (``replace`` to overwrite).
        """
        file_path = Path(file).expanduser().resolve()
        name = validate_name(name or file_path.name, "weights name")
        in_place = file_path == (self.folder / name).resolve()  # placed by hand: record it
        if not name.endswith(".pt"):
            raise InvalidName(f"weights name {name!r}: must end in .pt, e.g. {name}.pt")
        kind = model_kind(file_path)
        if kind != "detect":
            what = f"an {kind} model" if kind else "not a PyTorch checkpoint smalltrain can read"
            raise WrongModelKind(
                f"{source or file_path}: {what}; the weights folder holds Ultralytics detection "
                "models (.pt files such as yolov8s.pt)"
            )
        target = self.folder / name
        self.folder.mkdir(parents=True, exist_ok=True)
        with FileLock(self.folder / _LOCK):
            if target.exists() and not replace and not in_place:
                raise ModelExists(
                    f"weights {name!r} exist already ({target}); use another name, or "
                    "replace it (--force)"
                )
            if not in_place:
                _copy_atomic(file_path, target)
            index = self._index()
            index[name] = {
                "sha256": sha256_file(target),
                "size": target.stat().st_size,
                "source": source or str(file_path),
                "added": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            atomic_write_json(self.folder / INDEX, index)
        return self._entry(name, index[name])

    def get(self, name: str) -> WeightsEntry | None:
        """The entry of ``name`` (a bare file name), or None if nothing of that name is there."""
        if is_path(name) or validate_name_quiet(name) is None:
            return None
        entry = self._entry(name, self._index().get(name))
        return None if entry.state == "missing" and entry.sha256 is None else entry

    def _entry(self, name: str, record: dict[str, Any] | None) -> WeightsEntry:
        path = self.folder / name
        if not path.is_file():
            state, size, digest = "missing", 0, None
        else:
            size = path.stat().st_size
            digest = sha256_file(path)
            if record is None:
                state = "not added"
            else:
                state = "ok" if record.get("sha256") == digest else "changed"
        recorded = (record or {}).get("sha256")
        return WeightsEntry(
            name=name,
            path=str(path),
            size=size,
            sha256=recorded or digest,
            source=(record or {}).get("source"),
            added=(record or {}).get("added"),
            state=state,
        )

    def list(self) -> list[WeightsEntry]:
        """Every recorded file and every .pt in the folder, by name."""
        index = self._index()
        names = set(index)
        if self.folder.is_dir():
            names |= {p.name for p in self.folder.glob("*.pt") if p.is_file()}
        return [self._entry(n, index.get(n)) for n in sorted(names)]


def _copy_atomic(source: Path, target: Path) -> None:
    """Copy to a temporary file beside ``target``, fsync, rename: never a half-copied .pt."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, new_file_mode())
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def validate_name_quiet(name: str) -> str | None:
    """``name`` if it is a safe file name, else None."""
    try:
        return validate_name(name, "weights name")
    except InvalidName:
        return None


def is_path(text: str) -> bool:
    """Whether a config value names a place on disk rather than a registered name."""
    return "/" in text or "\\" in text or text.startswith(("~", ".")) or os.path.isabs(text)


def is_rooted_path(text: str) -> bool:
    """Whether a value reads as a place on disk wherever it appears: absolute, from home or the
    current folder, climbing with ``..``, or with a drive or backslash. A metric key such as
    ``val/sc`` is not (``is_path``, stricter, is for the fields that name weights)."""
    return (
        text.startswith(("~", ".", "/", "\\"))
        or os.path.isabs(text)
        or ".." in re.split(r"[/\\]", text)
        or re.match(r"^[A-Za-z]:", text) is not None
    )


def check_weights(
    task: Any, config: Mapping[str, Any], home: Path, origin: Origin
) -> dict[str, Any]:
    """Apply the weights rule to a job's config before it is queued; return the config to use.

    The task's ``weights_fields`` (detection: ``base_model``) name files it will load. From the
    user at this machine (``origin="local"``) a field may be a path or a name in the weights
    folder, and must exist (a relative path is made absolute, since the job may run in a
    worker elsewhere). From the web UI or the HTTP API (``"remote"``) no config value may read
    as a path (``is_rooted_path``; a weights field may hold no ``/`` at all), and a weights
    field must name a registered file whose sha256 still matches (a model .yaml by bare name,
    built from scratch, is fine).

    Raises:
        ConfigError: (remote) a path, or weights that are not registered or changed; names the
            field and says how to register weights.
        WeightsNotFound: (local) the file is not on disk.
    """
    out = dict(config)
    fields = tuple(getattr(task, "weights_fields", ()))
    if origin == "remote":
        for key, value in config.items():
            text = value.strip() if isinstance(value, str) else None
            if text is not None and (is_rooted_path(text) or key in fields and is_path(text)):
                raise ConfigError(
                    key, value, f"the web UI and the HTTP API take no paths: {HOW_TO_REGISTER}"
                )
    for key in fields:
        value = config.get(key)
        if not isinstance(value, str) or value.strip().lower().endswith((".yaml", ".yml")):
            continue
        if origin == "remote":
            _check_registered(WeightsStore(home), key, value.strip())
        else:
            out[key] = _local_file(WeightsStore(home), key, value.strip())
    return out


def _check_registered(store: WeightsStore, key: str, name: str) -> None:
    entry = store.get(name)
    if entry is not None and entry.state == "ok":
        return
    known = ", ".join(e.name for e in store.list() if e.state == "ok") or "none yet"
    if entry is None or entry.state == "missing":
        why = f"no registered weights of that name (registered: {known}); {HOW_TO_REGISTER}"
    elif entry.state == "not added":
        why = (
            f"{entry.path} was placed in the weights folder by hand and its sha256 was never "
            f"recorded; register it with: smalltrain weights add {entry.path}"
        )
    else:
        why = (
            f"{entry.path} changed since it was registered (its sha256 differs); register "
            f"it again with: smalltrain weights add --force FILE"
        )
    raise ConfigError(key, name, why)


def _local_file(store: WeightsStore, key: str, name: str) -> str:
    """A bare name in the weights folder stays a name; an existing path becomes absolute."""
    if not is_path(name) and (store.folder / name).is_file():
        return name
    path = Path(name).expanduser()
    if path.is_file():
        return str(path.resolve())
    raise WeightsNotFound(
        f"{key}={shorten(name)!r}: no such weights file, here or in {store.folder}. smalltrain "
        "never downloads weights: give a local .pt file, or register one once with "
        "`smalltrain weights add FILE` and give its name, or train from scratch with a model "
        ".yaml"
    )
