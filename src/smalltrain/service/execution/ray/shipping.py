"""The head side of "no shared storage": what a Ray job's node gets through the object store.

- **The dataset**: its folder (a dataset file's folder, e.g. around a YOLO data.yaml) is packed
  into one tar blob once per dataset fingerprint and put into Ray's object store once; every
  job on that dataset passes the same reference, and each node fetches it only when its cache
  has no verified copy (``ray_node.NodeCache``). The blob's sha256 travels with it and is
  checked on arrival. With ``ship_dataset=false`` only the path travels.
- **Files the config names** (a ``base_model`` .pt or a model .yaml on the head): shipped the
  same way, and the node's config points at its cached copy.
- **The run folder**: a new attempt that resumes gets the head's run folder (its checkpoints)
  packed, so it can resume on any node.

Object references are nested in a dict, so Ray never fetches them by itself: the node decides.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import ray

from smalltrain import paths
from smalltrain.engine.fsutil import sha256_bytes
from smalltrain.service.execution.attempt import AttemptSpec
from smalltrain.service.execution.placement import Placement
from smalltrain.service.execution.ray.node import pack_tree

__all__ = ["FILE_SUFFIXES", "Shipper"]

#: Config values ending like this that name a file on the head are shipped with the job.
FILE_SUFFIXES = (".pt", ".pth", ".yaml", ".yml", ".onnx", ".safetensors")


class Shipper:
    """Packs and puts what jobs need into the object store, once per content (thread-safe).

    ``packed`` counts the datasets packed (once per fingerprint, whatever the number of jobs).
    """

    def __init__(self) -> None:
        self._datasets: dict[str, dict[str, Any]] = {}
        self._files: dict[tuple[str, int, int], dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.packed = 0

    def shipment(self, spec: AttemptSpec, placement: Placement) -> dict[str, Any]:
        """Everything one attempt's node needs, as nested object references."""
        return {
            "dataset": self.dataset(spec) if placement.ship_dataset else None,
            "files": self.files(spec),
            "run_dir": self.run_dir(Path(spec.run_dir)),
        }

    def dataset(self, spec: AttemptSpec) -> dict[str, Any]:
        """The dataset's blob reference, sha256, size and entry (packed once per fingerprint)."""
        path = Path(spec.dataset_path)
        root = path if path.is_dir() else path.parent
        key = spec.dataset_fingerprint or _quick_key(root)
        with self._lock:
            item = self._datasets.get(key)
            if item is None:
                blob = pack_tree(root)
                item = {
                    "ref": ray.put(blob),
                    "sha256": sha256_bytes(blob),
                    "size": len(blob),
                    "entry": "." if path.is_dir() else path.name,
                }
                self._datasets[key] = item
                self.packed += 1
            return item

    def files(self, spec: AttemptSpec) -> dict[str, dict[str, Any]]:
        """Config fields that name a file on the head → that file's reference, sha and name."""
        home = Path(spec.cache_dir).parent if spec.cache_dir else paths.home()
        out = {}
        for key, value in spec.config.items():
            path = _config_file(value, home)
            if path is None:
                continue
            st = path.stat()
            with self._lock:
                fkey = (str(path), st.st_size, st.st_mtime_ns)
                item = self._files.get(fkey)
                if item is None:
                    blob = path.read_bytes()
                    item = {"ref": ray.put(blob), "sha256": sha256_bytes(blob), "name": path.name}
                    self._files[fkey] = item
            out[key] = item
        return out

    @staticmethod
    def run_dir(run_dir: Path) -> Any:
        """The head's run folder packed (links left out), or None when it holds nothing yet."""
        if not run_dir.is_dir() or not any(p.is_file() for p in run_dir.rglob("*")):
            return None
        return ray.put(pack_tree(run_dir, follow_links=False))


def _config_file(value: Any, home: Path) -> Path | None:
    """The head's file a config value names (as given, or in ``$SMALLTRAIN_HOME/weights``)."""
    if not isinstance(value, str) or not value.lower().endswith(FILE_SUFFIXES):
        return None
    given = Path(value).expanduser()
    for candidate in (given, paths.weights_dir(home) / given.name):
        if candidate.is_file():
            return candidate.resolve()
    return None


def _quick_key(root: Path) -> str:
    """A dataset key from file names, sizes and times, for a job planned without a fingerprint."""
    stamps = sorted(
        (p.relative_to(root).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    )
    return "quick-" + sha256_bytes(repr((str(root), stamps)).encode())
