"""One model's folder in the ``ModelStore``: filling it, and reading what it says about itself.

A model folder holds ``weights/best.pt``, ``config.yaml``, ``metrics.json``, extra files
(previews) and ``registry_entry.json`` (a copy of its registry entry, for rebuilds). ``fill``
writes all but the entry into a staging folder; a full disk there becomes ``DiskFull`` naming
the folder and the model's size.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from smalltrain.engine.fsutil import (
    atomic_write_json,
    atomic_write_text,
    disk_full_error,
    is_disk_full,
    sha256_file,
)
from smalltrain.engine.plain import plain
from smalltrain.store.names import validate_name

__all__ = ["ENTRY", "WEIGHTS", "entry_from", "entry_job", "fill", "tree_size"]

WEIGHTS = Path("weights") / "best.pt"
ENTRY = "registry_entry.json"


def tree_size(path: Path) -> int:
    """Bytes in a file, or in every file under a folder."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0


def fill(
    staging: Path,
    weights: Path,
    config: Mapping[str, Any],
    metrics: Mapping[str, Any],
    extra_files: Mapping[str, str | os.PathLike[str]],
) -> None:
    """Copy the weights and extra files into ``staging``; write config.yaml and metrics.json.

    Raises:
        DiskFull: no room; the message names the folder and the model's size.
    """
    try:
        (staging / WEIGHTS).parent.mkdir(parents=True)
        shutil.copyfile(weights, staging / WEIGHTS)
        for rel, src in extra_files.items():
            target = staging / validate_name(rel, "extra file name")
            if Path(src).is_dir():
                shutil.copytree(src, target)
            else:
                shutil.copyfile(src, target)
        atomic_write_text(staging / "config.yaml", yaml.safe_dump(plain(config), sort_keys=False))
        atomic_write_json(staging / "metrics.json", plain(metrics))
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        needed = tree_size(weights) + sum(tree_size(Path(p)) for p in extra_files.values())
        raise disk_full_error(staging, needed, exc, what="model folder") from exc


def entry_job(model: Path) -> str | None:
    """The job id a model folder's ``registry_entry.json`` names, or None."""
    try:
        entry = json.loads((model / ENTRY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return str(entry.get("job_id")) if isinstance(entry, dict) and entry.get("job_id") else None


def entry_from(model: Path) -> dict[str, Any]:
    """A registry entry for a model folder: its ``registry_entry.json``, or what the folder
    shows (weights hash and size, creation time)."""
    try:
        entry = json.loads((model / ENTRY).read_text(encoding="utf-8"))
        if isinstance(entry, dict):
            return entry
    except (OSError, ValueError):
        pass
    weights = model / WEIGHTS
    created = datetime.fromtimestamp(weights.stat().st_mtime, timezone.utc)
    return {
        "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "base_model": None,
        "epochs_completed": 0,
        "dataset_snapshot": "",
        "weights_sha256": sha256_file(weights),
        "weights_size": weights.stat().st_size,
    }
