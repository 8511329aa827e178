"""Warnings about how a run is going, checked after every epoch: overfitting and underfitting.

Both compare what the model does on its training chunks with a reference and tell the user
what to try; training goes on either way.

- Overfitting: validation loss far above training loss (``overfit_warning_ratio``).
- Underfitting: after enough optimizer steps (``UNDERFIT_MIN_STEPS``, or half the run when it
  is shorter), the model's spectral convergence on its own training chunks (``train/sc``) is
  still above PCA's of the same size on the *validation* chunks (``pca/sc``) for
  ``UNDERFIT_EPOCHS`` epochs in a row: a linear model does better on sounds it never saw than
  the model on the sounds it trains on. That is an optimisation or modelling failure, not
  overfitting, and more steps, a higher learning rate, a wider model or a per-chunk gain are
  the things to try. (PCA's SC on the training chunks themselves, ``pca/train_sc``, is no
  bar: with fewer chunks than components it is 0.) ``train/sc`` is measured on the augmented,
  sampled training batches, so it reads a little above the clean chunks' SC: the warning errs
  towards silence.

Each warning is given when the condition first holds, then again only when it has grown
1.5x or 20 epochs later: long small-data runs sit above the threshold for most of their epochs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from smalltrain.engine.events import Event, WarningEvent

__all__ = ["overfitting_warning", "underfitting_warning"]

REPEAT_EPOCHS = 20  # a standing condition is repeated this often...
REPEAT_GROWTH = 1.5  # ...or as soon as it has grown this much since the last warning
UNDERFIT_MIN_STEPS = 1000
UNDERFIT_EPOCHS = 3


def _due(last: tuple[int, float] | None, epoch: int, size: float) -> bool:
    return last is None or epoch - last[0] >= REPEAT_EPOCHS or size >= REPEAT_GROWTH * last[1]


def overfitting_warning(run: Any, metrics: dict[str, float], emit: Callable[[Event], None]) -> None:
    """Warn when validation loss is more than ``overfit_warning_ratio`` above training loss."""
    train_loss, val_loss = metrics.get("train/loss", math.nan), metrics.get("val/loss", math.nan)
    if not (math.isfinite(train_loss) and math.isfinite(val_loss) and train_loss > 0):
        return
    gap = (val_loss - train_loss) / train_loss
    epoch = run.state.epoch
    if gap > run.config.overfit_warning_ratio and _due(run.overfit_warned, epoch, gap):
        run.overfit_warned = (epoch, gap)
        emit(
            WarningEvent(
                code="overfitting",
                message=f"validation loss is {gap:.0%} above training loss "
                f"({val_loss:.4f} vs {train_loss:.4f}); training continues",
                epoch=epoch,
            )
        )


def underfitting_warning(
    run: Any, metrics: dict[str, float], emit: Callable[[Event], None]
) -> None:
    """Warn when training SC has stayed above PCA's validation SC after enough steps."""
    model_sc, pca_sc = metrics.get("train/sc", math.nan), metrics.get("pca/sc", math.nan)
    if not (math.isfinite(model_sc) and math.isfinite(pca_sc)):
        return
    run.underfit_epochs = run.underfit_epochs + 1 if model_sc > pca_sc else 0
    total = run.steps_per_epoch * run.config.epochs
    steps = run.state.global_step
    if steps < min(UNDERFIT_MIN_STEPS, total // 2) or run.underfit_epochs < UNDERFIT_EPOCHS:
        return
    excess = model_sc / max(pca_sc, 1e-9)
    epoch = run.state.epoch
    if not _due(run.underfit_warned, epoch, excess):
        return
    run.underfit_warned = (epoch, excess)
    emit(WarningEvent(code="underfitting", message=_underfit_advice(run, model_sc, pca_sc, steps),
                      epoch=epoch))  # fmt: skip


def _underfit_advice(run: Any, model_sc: float, pca_sc: float, steps: int) -> str:
    cfg = run.config
    tips = [
        f"more steps (--set epochs={cfg.epochs * 2}"
        + (", early_stopping_patience=0)" if cfg.early_stopping_patience else ")"),
        f"a higher learning rate (--set learning_rate={cfg.learning_rate * 2:g})",
        f"a wider model (--set model_width={cfg.model_width * 2})",
    ]
    if cfg.latent_layout == "temporal" and not cfg.chunk_gain:
        tips.insert(0, "a per-chunk level apart from timbre (--set chunk_gain=true, "
                    "latent_global=11, latent_frames=12), for sounds at many levels")  # fmt: skip
    return (
        f"training SC {model_sc:.3f} is still above PCA's validation SC {pca_sc:.3f} after "
        f"{steps} steps: the model underfits (it reproduces the sounds it trains on worse than "
        f"a linear model of its size reproduces sounds it never saw). Try {'; '.join(tips)}."
    )
