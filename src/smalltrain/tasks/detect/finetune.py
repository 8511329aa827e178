"""Continue training for N more epochs: a new fine-tune from a finished run's weights.

Ultralytics cannot extend ``epochs`` on resume (a finished last.pt has no optimizer state and
``resume`` keeps the original epoch count), so continuing is a fresh run whose ``base_model`` is
the finished best.pt, with a short warm-up and the previous run's other settings.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from smalltrain.errors import ConfigError
from smalltrain.tasks.detect.config import TrainingConfig

__all__ = ["continue_config"]


def continue_config(
    previous: TrainingConfig, weights: Path, extra_epochs: int, **overrides: Any
) -> TrainingConfig:
    """The config of a fine-tune that continues ``previous`` from ``weights`` for N epochs.

    Raises:
        ConfigError: ``extra_epochs < 1`` or the weights file does not exist.
    """
    if extra_epochs < 1:
        raise ConfigError("extra_epochs", extra_epochs, "must be >= 1")
    if not Path(weights).is_file():
        raise ConfigError("weights", str(weights), "must be an existing .pt (the finished best.pt)")
    changes: dict[str, Any] = {
        "base_model": str(Path(weights).resolve()),
        "epochs": extra_epochs,
        "warmup_epochs": min(previous.warmup_epochs, 1.0),
        "close_mosaic": min(previous.close_mosaic, extra_epochs),
        "patience": min(previous.patience, extra_epochs) if previous.patience else 0,
    }
    changes.update(overrides)
    return dataclasses.replace(previous, **changes)
