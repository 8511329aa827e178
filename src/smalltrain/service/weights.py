"""Pretrained weights the user registered: ``<home>/weights/`` and its ``weights.json`` index.

The detection task finds ``base_model=NAME`` in this folder (``tasks.detect.offline``).
``WeightsStore.add`` checks a file without running it (``engine.ptinfo``), copies it in
atomically and records its sha256, size and origin, so ``list`` can tell a file that changed
since it was added. Files placed in the folder by hand are listed too, as "not added".
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from smalltrain import paths
from smalltrain.engine.fsutil import atomic_write_json, sha256_file
from smalltrain.engine.locks import FileLock
from smalltrain.errors import InvalidName, ModelExists, WrongModelKind
from smalltrain.store.names import validate_name
from smalltrain.tasks import model_kind

__all__ = ["INDEX", "WeightsEntry", "WeightsStore"]

INDEX = "weights.json"
_LOCK = ".weights.lock"


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
            replace: bool = False) -> WeightsEntry:  # fmt: skip
        """Copy ``file`` in as ``name`` (default: its file name) and record its sha256.

        Raises:
            InvalidName: ``name`` is not a safe file name, or does not end in .pt.
            WrongModelKind: the file is not a detection checkpoint (an audio model...).
            ModelExists: a file of that name is there already (``replace`` to overwrite).
        """
        source = Path(file).expanduser().resolve()
        name = validate_name(name or source.name, "weights name")
        if not name.endswith(".pt"):
            raise InvalidName(f"weights name {name!r}: must end in .pt, e.g. {name}.pt")
        kind = model_kind(source)
        if kind != "detect":
            what = f"an {kind} model" if kind else "not a PyTorch checkpoint smalltrain can read"
            raise WrongModelKind(
                f"{source}: {what}; the weights folder holds Ultralytics detection models "
                "(.pt files such as yolov8s.pt)"
            )
        target = self.folder / name
        self.folder.mkdir(parents=True, exist_ok=True)
        with FileLock(self.folder / _LOCK):
            if target.exists() and not replace:
                raise ModelExists(
                    f"{target} exists already; use another --name, or --force to replace it"
                )
            _copy_atomic(source, target)
            index = self._index()
            index[name] = {
                "sha256": sha256_file(target),
                "size": target.stat().st_size,
                "source": str(source),
                "added": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            atomic_write_json(self.folder / INDEX, index)
        return self._entry(name, index[name])

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
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
