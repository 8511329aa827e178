"""``planning.start_line``: how a job's model starts, in the one line the train form shows."""

from __future__ import annotations

import pytest

from smalltrain.service.planning import start_line


@pytest.mark.parametrize(
    ("config", "line"),
    [
        ({"epochs": 200}, "training from scratch, 200 epochs"),
        ({"base_model": "yolo11n.yaml", "epochs": 300},
         "training from scratch (yolo11n.yaml), 300 epochs"),
        ({"base_model": "fall.pt", "freeze_layers": 10, "epochs": 200},
         "fine-tuning fall.pt: 10 backbone layers frozen, 200 epochs"),
        ({"base_model": "fall.pt", "freeze_layers": 0, "epochs": 20},
         "fine-tuning fall.pt: every layer trained, 20 epochs"),
    ],
)  # fmt: skip
def test_start_line(config: dict[str, object], line: str) -> None:
    assert start_line(config) == line
