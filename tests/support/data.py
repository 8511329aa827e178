"""The shared real data beside the repository (``../shared/data``), for tests that use it.

A user's fresh clone does not have it: tests that read it skip with one clear reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SONIC_PI = SHARED / "audio" / "sonic_pi_cc0"
COCO8 = SHARED / "detection" / "coco8"
BCCD = SHARED / "detection" / "bccd"
PRETRAINED = SHARED / "weights" / "yolov8s_fall_detection.pt"
SHARED_SKIP = f"shared real data not found at {SHARED} (only present in CI/dev checkouts)"


def require(path: Path) -> Path:
    """Skip the test with one clear reason when the shared data is absent."""
    if not path.exists():
        pytest.skip(SHARED_SKIP)
    return path


def register_pretrained_detector(home: Path, dataset: str = "falls", name: str = "v8s") -> str:
    """Register the shared pretrained YOLOv8s (a fall detector: Normal, Fall) in ``home``'s
    model registry as ``DATASET/NAME`` (skips the test when the shared data is absent)."""
    from smalltrain import paths
    from smalltrain.store import ModelEntry, ModelStore

    ModelStore(paths.models_dir(home)).save(ModelEntry(
        dataset=dataset, name=name, weights=require(PRETRAINED), task="detect", config={},
        metrics={}, base_model=None, epochs_completed=0, headline=("best_map50_95", None),
    ))  # fmt: skip
    return f"{dataset}/{name}"
