"""Stand-in detection weights for tests that plan, register or resolve a ``.pt`` but never
train on it."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path


def yolo_pt(path: Path, tag: str = "") -> Path:
    """Write a file that reads as an Ultralytics checkpoint to smalltrain's checks (a torch
    zip whose ``data.pkl`` holds ``train_args``, as ``engine.ptinfo.peek`` reads it) without
    torch. ``tag`` makes two files differ (sha256 tests). Ultralytics cannot load it: the real
    pretrained detector (tests.support.data.PRETRAINED) is for tests that train."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{path.stem}/data.pkl", pickle.dumps({"train_args": {}, "tag": tag}))
    return path
