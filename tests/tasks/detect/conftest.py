"""Fixtures for the detection task: a synthetic shapes dataset and a tiny model yaml (the shared
real data and ``home`` come from ``tests/support/data.py`` and ``tests/conftest.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from smalltrain.tasks.detect.synth import make_shapes_dataset, write_tiny_model


@pytest.fixture
def shapes(tmp_path: Path) -> Path:
    """A 2-class synthetic dataset (8 train, 4 val, 64 px); returns its data.yaml."""
    return make_shapes_dataset(tmp_path / "shapes")


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    """A very small YOLO model yaml (trains from scratch)."""
    return write_tiny_model(tmp_path / "tiny-yolov8n.yaml")
