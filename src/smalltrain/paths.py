"""Where smalltrain keeps its files (``SMALLTRAIN_HOME``)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

ENV_HOME = "SMALLTRAIN_HOME"


def home(override: str | os.PathLike[str] | None = None) -> Path:
    """Return the smalltrain home folder, creating it if needed.

    Order: the explicit ``override`` (``--home``), then ``$SMALLTRAIN_HOME``, then the
    platform's user data dir.
    """
    if override is not None:
        root = Path(override)
    elif os.environ.get(ENV_HOME):
        root = Path(os.environ[ENV_HOME])
    else:
        root = Path(platformdirs.user_data_dir("smalltrain", appauthor=False))
    root = root.expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


def db_path(root: Path) -> Path:
    return root / "smalltrain.db"


def runs_dir(root: Path) -> Path:
    return root / "runs"


def models_dir(root: Path) -> Path:
    return root / "models"


def cache_dir(root: Path) -> Path:
    return root / "cache"
