"""The activation rule as a table: which model becomes a dataset's active one, and the words."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from smalltrain.service.registration import activation_rule
from smalltrain.store.model_info import ModelInfo


def model(name: str, value: float | None, metric: str = "val/sc", mode: str = "min") -> ModelInfo:
    return ModelInfo(
        name=name,
        dataset="kicks",
        path=Path("/nowhere") / name,
        weights=Path("/nowhere") / name / "model.pt",
        headline_metric=metric,
        headline_value=value,
        headline_mode=mode,
    )


CASES = [
    # new, active, becomes active, words that must be in the reason
    (model("a", 0.5), None, True, "the first model of dataset 'kicks'"),
    (model("a", 0.5), model("a", 0.9), True, "the first model"),  # retrained under its name
    (model("b", 0.4), model("a", 0.5), True, "beats the previous active model 'a'"),
    (model("b", 0.6), model("a", 0.5), False, "'a' is as good or better"),
    (model("b", 0.5), model("a", 0.5), False, "as good or better"),  # a tie keeps the old one
    (model("b", 0.6, "mAP50-95", "max"), model("a", 0.5, "mAP50-95", "max"), True, "higher"),
    (model("b", 0.4, "mAP50-95", "max"), model("a", 0.5, "mAP50-95", "max"), False, "higher"),
    (model("b", 0.1), model("a", 0.5, metric="val/loss"), False, "cannot be compared"),
    (model("b", None), model("a", 0.5), False, "cannot be compared"),
    (model("b", math.nan), model("a", 0.5), False, "cannot be compared"),
    (model("b", 0.1), model("a", math.inf), False, "cannot be compared"),
]


@pytest.mark.parametrize(("new", "active", "wins", "words"), CASES)
def test_activation_rule(new: ModelInfo, active: ModelInfo | None, wins: bool, words: str) -> None:
    made_active, why = activation_rule(new, active)
    assert made_active is wins
    assert words in why, why
