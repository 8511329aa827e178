"""Training on the shared real data: coco8, BCCD and transfer learning from a pretrained .pt.

Skipped with one clear reason when ``../shared/data`` is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from smalltrain.engine.context import JobContext, TrainResult
from smalltrain.engine.events import Event, TrainingStarted
from smalltrain.tasks.detect import DetectTask, TrainingConfig
from tests.support.data import BCCD, COCO8, PRETRAINED, require


def _train(tmp_path: Path, data: Path, **values: object) -> tuple[TrainResult, list[Event]]:
    events: list[Event] = []
    config = TrainingConfig(**{"batch_size": 4, "image_size": 64, "workers": 0, **values})  # type: ignore[arg-type]
    ctx = JobContext(
        "job",
        config,
        data,
        tmp_path / "run",
        emit=events.append,
        cache_dir=tmp_path / "h" / "cache",
    )
    return DetectTask().train(ctx), events


@pytest.mark.slow
def test_coco8_from_scratch(tmp_path: Path, tiny_model: Path) -> None:
    result, _ = _train(
        tmp_path, require(COCO8) / "coco8.yaml", base_model=str(tiny_model), epochs=1
    )
    assert result.status == "completed"
    assert result.extra["dataset_snapshot"] == "8 images, 80 classes"


@pytest.mark.slow
def test_bccd_train_val(tmp_path: Path, tiny_model: Path) -> None:
    result, _ = _train(
        tmp_path,
        require(BCCD),
        base_model=str(tiny_model),
        epochs=1,
        batch_size=16,
        freeze_layers=0,
    )
    assert result.status == "completed"
    history = result.extra["metrics"]["history"]
    assert len(history) == 1
    assert "val/mAP50" in history[0]


@pytest.mark.slow
def test_transfer_learning_with_frozen_backbone(tmp_path: Path, shapes: Path) -> None:
    pretrained = require(PRETRAINED)
    result, events = _train(
        tmp_path, shapes, base_model=str(pretrained), epochs=1, freeze_layers=10
    )
    assert result.status == "completed"
    started = next(e for e in events if isinstance(e, TrainingStarted))
    assert started.info["freeze"] == 10
    assert result.weights is not None
    before = torch.load(pretrained, map_location="cpu", weights_only=False)["model"].state_dict()
    after = torch.load(result.weights, map_location="cpu", weights_only=False)
    after_sd = after["model"].state_dict()
    frozen = "model.0.conv.weight"  # backbone layer 0: frozen, so unchanged
    assert torch.allclose(before[frozen].float(), after_sd[frozen].float(), atol=1e-3)
    trained = "model.15.cv1.conv.weight"  # neck layer 15: trained
    assert not torch.allclose(before[trained].float(), after_sd[trained].float(), atol=1e-5)
    assert after["model"].names == {0: "rect", 1: "circle"}  # the new head's classes
