"""Where smalltrain keeps its files (``SMALLTRAIN_HOME``): every path in the home is named here."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

ENV_HOME = "SMALLTRAIN_HOME"


def home(override: str | os.PathLike[str] | None = None, *, create: bool = True) -> Path:
    """Return the smalltrain home folder, creating it if needed (unless ``create=False``,
    for lookups that must not leave a folder behind).

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
    if create:
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


def run_dir(root: Path, job_id: str) -> Path:
    """The default run folder of a job (checkpoints, previews, logs)."""
    return runs_dir(root) / job_id


def weights_dir(root: Path) -> Path:
    """Pretrained weights the user placed or registered, found by bare file name."""
    return root / "weights"


def weights_index(root: Path) -> Path:
    """The weights folder's index: each registered file's sha256 (``service.weights``)."""
    return weights_dir(root) / "weights.json"


def tool_dir(root: Path, tool: str) -> Path:
    """A third-party tool's own config/cache folder, kept inside the home (``cache/<tool>``)."""
    return cache_dir(root) / tool


def datasets_dir(root: Path) -> Path:
    """Datasets uploaded through the web UI or the HTTP API (one folder per dataset name)."""
    return root / "datasets"


def ui_dir(root: Path) -> Path:
    """The web UI's own files: remembered settings, outputs of "use" actions, temporary files."""
    return root / "ui"


def scheduler_lock_path(root: Path) -> Path:
    """The lock file that makes one scheduler per home."""
    return root / "scheduler.lock"


def datasets_lock_path(root: Path) -> Path:
    """The lock file that makes registering a dataset by path one step per home."""
    return root / "datasets.lock"


def find_data_yaml(path: Path) -> Path | None:
    """Return the YOLO data yaml for ``path`` (the file itself or one inside the folder)."""
    if path.is_file() and path.suffix.lower() in (".yaml", ".yml"):
        return path
    if path.is_dir():
        for name in ("data.yaml", "data.yml"):
            if (path / name).is_file():
                return path / name
        yamls = sorted(p for p in path.glob("*.y*ml") if p.is_file())
        if len(yamls) == 1:
            return yamls[0]
    return None


def space_reserve_path(root: Path) -> Path:
    """A file holding a little disk space back, released to record a job's end on a full disk."""
    return root / ".space-reserve"


def escaped_name(name: str) -> str:
    """A file name as printable UTF-8: bytes that are not valid UTF-8 become ``\\xNN``."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def valid_utf8_name(name: str) -> bool:
    """Whether a file name (as ``os`` decodes it) is valid UTF-8; a name that is not holds
    surrogates, which crash any later ``encode()`` (a digest, a database row, JSON)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
