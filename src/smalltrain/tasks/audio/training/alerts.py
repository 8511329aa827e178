"""Warnings about how a run is going, checked after every epoch: overfitting and underfitting,
as one verdict that does not flip-flop (``FitWatch``).

The evidence, per epoch:

- Overfitting: validation loss far above training loss (``overfit_warning_ratio``).
- Underfitting: after enough optimizer steps (``UNDERFIT_MIN_STEPS``, or half the run when it
  is shorter), the model's spectral convergence on its own training chunks (``train/sc``) is
  still above PCA's of the same size on the *validation* chunks (``pca/sc``): a linear model
  does better on sounds it never saw than the model on the sounds it trains on. That is an
  optimisation or modelling failure, not overfitting, and more steps, a higher learning rate, a
  wider model or a per-chunk gain are the things to try. (PCA's SC on the training chunks
  themselves, ``pca/train_sc``, is no bar: with fewer chunks than components it is 0.)
  ``train/sc`` is measured on the augmented, sampled training batches, so it reads a little
  above the clean chunks' SC: the warning errs towards silence.

The verdict (hysteresis, so the advice agrees with itself):

- A verdict is claimed only when its evidence has held ``HOLD_EPOCHS`` epochs in a row, and
  withdrawn (a ``fit_recovered`` note) only when it has been absent ``RELEASE_EPOCHS`` in a row.
- When both hold, underfitting wins, and overfitting is not claimed while the underfitting
  evidence stands (even before enough steps to claim underfitting): a model worse than a linear
  one on its own training sounds is not in a state where its validation gap means overfitting.
- A verdict that contradicts the standing one replaces it, and its message says which warning
  it replaces and why; the UI shows the newest verdict only (``FIT_CODES``).
- A standing verdict is repeated only 20 epochs later or when it has grown 1.5x: long
  small-data runs sit above the threshold for most of their epochs.
- The watch's state is saved in every checkpoint, so a resumed run goes on with the same
  verdict and streaks instead of starting the analysis again.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from smalltrain.engine.events import Event, WarningEvent

__all__ = ["FIT_CODES", "FitWatch", "fit_warnings"]

REPEAT_EPOCHS = 20  # a standing verdict is repeated this often...
REPEAT_GROWTH = 1.5  # ...or as soon as it has grown this much since the last warning
UNDERFIT_MIN_STEPS = 1000
HOLD_EPOCHS = 3  # evidence must hold this many epochs in a row before a verdict is claimed
RELEASE_EPOCHS = 3  # and be absent this many epochs in a row before it is withdrawn
OVER, UNDER, RECOVERED = "overfitting", "underfitting", "fit_recovered"
#: Warning codes that carry the fit verdict: only the newest of them stands.
FIT_CODES = frozenset({OVER, UNDER, RECOVERED})

_WHY_REPLACED = {
    (OVER, UNDER): "the gap between validation and training loss was a symptom of a model "
    "that does not yet fit its own training sounds; fix that first",
    (UNDER, OVER): "the model now fits its training sounds better than the linear baseline, "
    "so what remains is the gap to sounds it never heard",
}


@dataclass
class FitWatch:
    """The standing verdict and the streaks of evidence behind it (checkpointed)."""

    verdict: str | None = None  # OVER, UNDER or None
    since: int | None = None  # the epoch the verdict was claimed
    over: int = 0  # epochs in a row with the overfitting evidence
    under: int = 0  # epochs in a row with the underfitting evidence
    absent: int = 0  # epochs in a row without the standing verdict's evidence
    warned_epoch: int | None = None  # the last warning of the standing verdict...
    warned_size: float = 0.0  # ...and how large its evidence was then

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            if hasattr(self, key):
                setattr(self, key, value)

    def _due(self, epoch: int, size: float) -> bool:
        last, grown = self.warned_epoch, size >= REPEAT_GROWTH * self.warned_size
        return last is None or epoch - last >= REPEAT_EPOCHS or grown


def _evidence(run: Any, metrics: dict[str, float]) -> tuple[float | None, float | None]:
    """(overfitting gap, underfitting excess) this epoch; None = not measurable, 0 = absent."""
    over: float | None = None
    train_loss, val_loss = metrics.get("train/loss", math.nan), metrics.get("val/loss", math.nan)
    if math.isfinite(train_loss) and math.isfinite(val_loss) and train_loss > 0:
        gap = (val_loss - train_loss) / train_loss
        over = gap if gap > run.config.overfit_warning_ratio else 0.0
    under: float | None = None
    model_sc, pca_sc = metrics.get("train/sc", math.nan), metrics.get("pca/sc", math.nan)
    if math.isfinite(model_sc) and math.isfinite(pca_sc):
        under = model_sc / max(pca_sc, 1e-9) if model_sc > pca_sc else 0.0
    return over, under


def fit_warnings(run: Any, metrics: dict[str, float], emit: Callable[[Event], None]) -> None:
    """Update ``run.fit`` with this epoch's evidence; warn when the verdict is claimed, grows,
    changes (saying what it replaces) or is withdrawn."""
    w: FitWatch = run.fit
    epoch = run.state.epoch
    over, under = _evidence(run, metrics)
    if over is not None:
        w.over = w.over + 1 if over else 0
    if under is not None:
        w.under = w.under + 1 if under else 0
    total = run.steps_per_epoch * run.config.epochs
    enough_steps = run.state.global_step >= min(UNDERFIT_MIN_STEPS, total // 2)
    if w.under >= HOLD_EPOCHS and enough_steps:
        verdict, size = UNDER, under or 0.0
    elif w.over >= HOLD_EPOCHS and not w.under:
        verdict, size = OVER, over or 0.0
    else:
        verdict, size = None, 0.0
    if verdict is None and w.verdict is not None:
        standing = w.over if w.verdict == OVER else w.under
        w.absent = 0 if standing else w.absent + 1
        if w.absent >= RELEASE_EPOCHS:
            emit(WarningEvent(code=RECOVERED, message=_recovered(w), epoch=epoch))
            _set(w, None, epoch, 0.0)
        return
    if verdict is None or (verdict == w.verdict and not w._due(epoch, size)):
        w.absent = 0
        return
    replaced = w.verdict if w.verdict not in (None, verdict) else None
    message = _advice(run, verdict, metrics)
    if replaced is not None:
        message += (
            f" This replaces the {replaced} warning of epoch {(w.since or 0) + 1}: "
            f"{_WHY_REPLACED[(replaced, verdict)]}."
        )
    if verdict != w.verdict:
        _set(w, verdict, epoch, size)
    w.warned_epoch, w.warned_size = epoch, size
    emit(WarningEvent(code=verdict, message=message, epoch=epoch))


def _set(w: FitWatch, verdict: str | None, epoch: int, size: float) -> None:
    w.verdict, w.since, w.absent = verdict, epoch if verdict else None, 0
    w.warned_epoch, w.warned_size = (epoch, size) if verdict else (None, 0.0)


def _recovered(w: FitWatch) -> str:
    evidence = (
        "validation loss is back within the overfitting threshold of training loss"
        if w.verdict == OVER
        else "training SC is below PCA's validation SC again"
    )
    return (
        f"the {w.verdict} warning of epoch {(w.since or 0) + 1} no longer holds: {evidence} "
        f"for {RELEASE_EPOCHS} epochs in a row"
    )


def _advice(run: Any, verdict: str, metrics: dict[str, float]) -> str:
    if verdict == OVER:
        train_loss, val_loss = metrics["train/loss"], metrics["val/loss"]
        gap = (val_loss - train_loss) / train_loss
        return (
            f"validation loss is {gap:.0%} above training loss ({val_loss:.4f} vs "
            f"{train_loss:.4f}) for {HOLD_EPOCHS}+ epochs in a row; training continues"
        )
    return _underfit_advice(run, metrics["train/sc"], metrics["pca/sc"], run.state.global_step)


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
