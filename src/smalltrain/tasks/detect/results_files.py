"""The detection results bundle on disk, read without torch or Ultralytics (the web UI's server
process and light CLI commands read it): its folder and file names, ``read_results`` and the
files a page may be served (``listed_files``). ``results`` writes it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["RESULTS_DIR", "RESULTS_JSON", "listed_files", "read_results"]

RESULTS_DIR = "results"
RESULTS_JSON = "results.json"


def read_results(folder: Path) -> dict[str, Any] | None:
    """``<folder>/results/results.json`` (``folder``: a model or run folder), or None."""
    try:
        data = json.loads((Path(folder) / RESULTS_DIR / RESULTS_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def listed_files(data: Mapping[str, Any]) -> set[str]:
    """The file names (relative to the results folder) that results.json lists."""
    names = {str(v) for v in (data.get("files") or {}).values() if isinstance(v, str)}
    for item in data.get("worst") or []:
        if isinstance(item, Mapping) and isinstance(item.get("file"), str):
            names.add(str(item["file"]))
    return names
