"""Validation every k epochs and patience counted in validations.

End to end through the CLI (real Ultralytics in the job's child process): with ``val_every=2``
over 4 epochs, epochs 0 (the first, measured), 2 and 3 (the last) are validated; epoch 1 reports
its training losses and no validation numbers, in its event and in the model's history. The
stopper counts validations, not epochs; the auto rule for k follows the measured times.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from smalltrain.tasks.detect.presets import val_interval
from tests.tasks.detect.test_cancel_resume_cli import _events, smalltrain


@pytest.mark.slow
def test_validates_every_k_epochs_and_always_at_the_last(
    home: Path, shapes: Path, tiny_model: Path
) -> None:
    smalltrain(home, "datasets", "add", "shapes", str(shapes))
    out = smalltrain(home, "train", "shapes", "--set", f"base_model={tiny_model}",
                     "--set", "epochs=4", "--set", "val_every=2", "--set", "batch_size=4",
                     "--set", "image_size=64", "--model-name", "k2").stdout  # fmt: skip
    assert "completed" in out
    (job,) = json.loads(smalltrain(home, "jobs", "list", "--json").stdout)
    epochs = {e["epoch"]: e["metrics"] for e in _events(home, job["id"]) if e["type"] == "epoch"}
    assert sorted(epochs) == [0, 1, 2, 3]
    validated = sorted(e for e, m in epochs.items() if "val/mAP50" in m)
    assert validated == [0, 2, 3]
    assert not any(k.startswith(("val/", "metrics/")) for k in epochs[1])
    assert "train/box_loss" in epochs[1]

    (model,) = json.loads(smalltrain(home, "models", "list", "--json").stdout)
    history = json.loads((Path(model["path"]) / "metrics.json").read_text())["history"]
    assert [int(row["epoch"]) for row in history] == [0, 1, 2, 3]
    assert [int(r["epoch"]) for r in history if "val/mAP50" in r] == [0, 2, 3]
    assert all(math.isfinite(v) for row in history for v in row.values())


def test_patience_counts_validations_not_epochs() -> None:
    from ultralytics.utils.torch_utils import EarlyStopping

    from smalltrain.tasks.detect.trainer import ValidationStopper

    # Validations every 3 epochs (1-based epochs 1, 4, 7, 10), the best at the first one.
    schedule = [(1, 0.5), (4, 0.4), (7, 0.45), (10, 0.3)]
    ours, theirs = ValidationStopper(patience=2), EarlyStopping(patience=2)
    ours_stop = [e for e, f in schedule if ours(e, f)]
    theirs_stop = [e for e, f in schedule if theirs(e, f)]
    assert theirs_stop[0] == 4  # Ultralytics: 3 epochs since the best >= 2
    assert ours_stop[0] == 7  # ours: the second validation without improvement
    assert ours.since_best == 3
    assert not ours(11, None)  # an epoch without validation never counts
    assert ours.since_best == 3
    assert ours(12, 0.6) is False  # improvement resets the count
    assert ours.since_best == 0


@pytest.mark.parametrize(
    ("train_s", "val_s", "epochs", "k"),
    [
        (0.67, 0.32, 30, 3),  # BCCD on an H100: validation is half the training loop
        (0.67, 0.32, 10, 1),  # a short run still validates every epoch (>= ~10 validations)
        (10.0, 0.5, 100, 1),  # cheap validation next to training: every epoch
        (1.0, 50.0, 300, 10),  # validation far costlier than training: capped at 10
        (0.0, 1.0, 100, 1),  # nothing measured yet
    ],
)
def test_auto_val_interval(train_s: float, val_s: float, epochs: int, k: int) -> None:
    assert val_interval(train_s, val_s, epochs) == k
