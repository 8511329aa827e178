"""What the model sees: a few augmented training examples each task writes at the start of a run.

Layout, for every task: ``<run>/seen/`` holds the files and ``seen.json`` describes them:

```
{"task": "audio" | "detect", "augmentation": {...} | null, "note": "...",
 "items": [{"files": {"original": "chunk_0_original.wav", "augmented": "..."},
            "source": "kicks/k1.wav", "params": {...}, ...}, ...]}
```

Only the names listed under an item's ``files`` are ever served to the web UI (``Backend``
maps a job id to its run folder and refuses any other name).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from smalltrain.engine.fsutil import atomic_write_json

__all__ = ["SEEN_DIR", "SEEN_JSON", "listed_files", "read_seen", "write_seen"]

SEEN_DIR = "seen"
SEEN_JSON = "seen.json"


def write_seen(run_dir: Path, manifest: Mapping[str, Any]) -> Path:
    """Write ``<run>/seen/seen.json`` atomically (after the files it names)."""
    return atomic_write_json(Path(run_dir) / SEEN_DIR / SEEN_JSON, dict(manifest))


def read_seen(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``seen.json``, or None when it has none (yet) or it is unreadable."""
    path = Path(run_dir) / SEEN_DIR / SEEN_JSON
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def listed_files(manifest: Mapping[str, Any]) -> set[str]:
    """Every file name the manifest's items list (what may be served)."""
    names: set[str] = set()
    for item in manifest.get("items") or []:
        files = item.get("files") if isinstance(item, dict) else None
        if isinstance(files, dict):
            names.update(str(v) for v in files.values() if isinstance(v, str))
    return names
