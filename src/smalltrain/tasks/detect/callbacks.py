"""The original progress monitor and output parser, read from Ultralytics callbacks (not stdout).

:class:`ProgressMonitor` turns Ultralytics' trainer state into engine events with our slash keys:

- per batch, :class:`StepMetrics`: ``train/box_loss``, ``train/cls_loss``, ``train/dfl_loss``
  (running means over the epoch), ``progress/epoch`` and ``progress/total`` (fractions);
- per epoch, :class:`EpochMetrics`: train and val losses, ``metrics/precision``,
  ``metrics/recall``, ``val/mAP50``, ``val/mAP50-95``, ``metrics/fitness``, ``lr/pg0``...;
  an epoch that was not validated (``val_every``) carries the train losses and rates only;
- the final evaluation of best.pt, kept apart under ``final/...`` keys (:attr:`final`).

:class:`CancelGuard` makes a cancel leave a resumable last.pt (see its docstring).
:func:`redirect_output` sends Ultralytics' console output to the job log.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from smalltrain.engine.context import CancelToken
from smalltrain.engine.events import (
    CheckpointSaved,
    EpochMetrics,
    Event,
    LogEvent,
    StepMetrics,
    TrainingStarted,
)

__all__ = [
    "CancelGuard",
    "Cancelled",
    "ProgressMonitor",
    "normalise_metrics",
    "per_class_metrics",
    "redirect_output",
]

_RENAMES = {
    "metrics/precision(B)": "metrics/precision",
    "metrics/recall(B)": "metrics/recall",
    "metrics/mAP50(B)": "val/mAP50",
    "metrics/mAP50-95(B)": "val/mAP50-95",
    "fitness": "metrics/fitness",
    "time": "time/elapsed_s",
}
_VAL_PREFIXES = ("val/", "metrics/")
_FINAL = {
    "metrics/precision": "final/precision",
    "metrics/recall": "final/recall",
    "val/mAP50": "final/mAP50",
    "val/mAP50-95": "final/mAP50-95",
    "metrics/fitness": "final/fitness",
}


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def add_hook(model: Any, event: str, hook: Callable[[Any], None]) -> None:
    """``model.add_callback`` that rejects an unknown event name (Ultralytics accepts typos)."""
    from ultralytics.utils.callbacks.base import default_callbacks

    if event not in default_callbacks:
        raise ValueError(
            f"unknown Ultralytics callback {event!r}; known: {sorted(default_callbacks)}"
        )
    model.add_callback(event, hook)


def normalise_metrics(raw: dict[str, Any]) -> dict[str, float]:
    """Ultralytics metric keys to ours: ``metrics/mAP50(B)`` -> ``val/mAP50`` and so on."""
    return {_RENAMES.get(k, k): _num(v) for k, v in raw.items()}


def per_class_metrics(det_metrics: Any) -> dict[str, dict[str, float]]:
    """Per-class precision, recall, mAP50, mAP50-95, images and instances from Ultralytics'
    ``DetMetrics`` (classes the val split never shows are left out); {} when unavailable."""
    try:
        rows = det_metrics.summary()
    except Exception:  # an Ultralytics version without it, or no validation ran
        return {}
    keys = {"Box-P": "precision", "Box-R": "recall", "mAP50": "mAP50", "mAP50-95": "mAP50-95",
            "Images": "images", "Instances": "instances"}  # fmt: skip
    return {
        str(row["Class"]): {
            ours: _num(row[theirs]) for theirs, ours in keys.items() if theirs in row
        }
        for row in rows
    }


class ProgressMonitor:
    """Emits engine events from Ultralytics trainer callbacks and keeps the epoch history."""

    def __init__(
        self,
        emit: Callable[[Event], None],
        resumed_from: str | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        self.emit = emit
        self.resumed_from = resumed_from
        self.cancel = cancel
        self.history: list[dict[str, float]] = []
        self.final: dict[str, float] = {}
        self.per_class: dict[str, dict[str, float]] = {}
        self.global_step = 0
        self.last_saved_epoch = -1
        self._batch = 0
        self._pending_epoch: int | None = None
        self._epoch_start = time.time()

    def attach(self, model: Any) -> None:
        """Register the hooks on a ``ultralytics.YOLO`` model."""
        for name in (
            "on_train_start",
            "on_train_epoch_start",
            "on_train_batch_end",
            "on_train_epoch_end",
            "on_fit_epoch_end",
            "on_model_save",
        ):
            add_hook(model, name, getattr(self, name))

    def on_train_start(self, trainer: Any) -> None:
        """Training set up: announce it."""
        nb = len(trainer.train_loader)
        self.global_step = trainer.start_epoch * nb
        args = trainer.args
        info = {
            "imgsz": args.imgsz,
            "batch": trainer.batch_size,
            "nbs": args.nbs,
            "accumulate": trainer.accumulate,
            "optimizer": args.optimizer,
            "lr0": args.lr0,
            "freeze": args.freeze,
            "save_dir": str(trainer.save_dir),
            "optimizer_state_tensors": len(trainer.optimizer.state),  # > 0 after a real resume
        }
        self.emit(
            TrainingStarted(
                total_epochs=int(trainer.epochs),
                steps_per_epoch=nb,
                start_epoch=int(trainer.start_epoch),
                start_step=self.global_step,
                resumed_from=self.resumed_from,
                device=str(trainer.device),
                info=info,
            )
        )

    def on_train_epoch_start(self, trainer: Any) -> None:
        """Reset the batch counter."""
        self._batch = 0
        self._epoch_start = time.time()

    def on_train_batch_end(self, trainer: Any) -> None:
        """One batch done: running losses and progress."""
        nb = len(trainer.train_loader)
        epochs = max(int(trainer.epochs), 1)
        metrics = {f"train/{k}": _num(v) for k, v in (trainer.tloss or {}).items()}
        metrics["progress/epoch"] = (self._batch + 1) / nb
        metrics["progress/total"] = (trainer.epoch * nb + self._batch + 1) / (epochs * nb)
        self.emit(
            StepMetrics(
                epoch=int(trainer.epoch),
                step=self._batch,
                global_step=self.global_step,
                steps_per_epoch=nb,
                metrics=metrics,
            )
        )
        self._batch += 1
        self.global_step += 1

    def on_train_epoch_end(self, trainer: Any) -> None:
        """Training part of an epoch done; the fit-epoch hook that follows is a real epoch."""
        self._pending_epoch = int(trainer.epoch)

    def on_fit_epoch_end(self, trainer: Any) -> None:
        """An epoch's train+val summary, or (without a pending epoch) the final best.pt eval."""
        metrics = normalise_metrics(dict(trainer.metrics or {}))
        if self._pending_epoch != int(trainer.epoch):
            self.final = {_FINAL.get(k, f"final/{k.split('/')[-1]}"): v for k, v in metrics.items()}
            self.per_class = per_class_metrics(getattr(trainer.validator, "metrics", None))
            self.emit(LogEvent(message=f"final evaluation of best.pt: {self.final}"))
            return
        self._pending_epoch = None
        if not getattr(trainer, "validated", True):  # skipped (val_every): no validation numbers
            metrics = {k: v for k, v in metrics.items() if not k.startswith(_VAL_PREFIXES)}
        if trainer.tloss:
            metrics.update({k: _num(v) for k, v in trainer.label_loss_items(trainer.tloss).items()})
        if trainer.fitness is not None:
            metrics["metrics/fitness"] = _num(trainer.fitness)
        metrics.update({k: _num(v) for k, v in (getattr(trainer, "lr", None) or {}).items()})
        metrics["time/epoch_s"] = time.time() - self._epoch_start
        self.history.append({"epoch": float(trainer.epoch), **metrics})
        self.emit(
            EpochMetrics(
                epoch=int(trainer.epoch), total_epochs=int(trainer.epochs), metrics=metrics
            )
        )

    def on_model_save(self, trainer: Any) -> None:
        """last.pt (and maybe best.pt) landed on disk."""
        self.last_saved_epoch = int(trainer.epoch)
        if self.cancel is None or not self.cancel.is_set():  # else CancelGuard reports it
            epoch = int(trainer.epoch)
            event = CheckpointSaved(str(trainer.last), epoch, self.global_step, "interval")
            self.announce(trainer, event)
        # best.pt may still be on its way to disk (the trainer's writer thread): as Ultralytics'
        # save_model decides, it is written exactly when this epoch's fitness is the best.
        if trainer.fitness is not None and trainer.best_fitness == trainer.fitness:
            event = CheckpointSaved(str(trainer.best), int(trainer.epoch), self.global_step, "best")
            self.announce(trainer, event)

    def announce(self, trainer: Any, event: CheckpointSaved) -> None:
        """Emit ``event`` once its file is on disk (the trainer may write it on a thread)."""
        writer = getattr(trainer, "writer", None)
        if writer is None:
            self.emit(event)
        else:
            writer.when_written(Path(event.path), lambda: self.emit(event))


class Cancelled(Exception):
    """Raised from a callback to end Ultralytics' training loop after a cancel."""

    def __init__(self, checkpoint_epoch: int | None) -> None:
        self.checkpoint_epoch = checkpoint_epoch
        super().__init__(f"cancelled; resumable checkpoint epoch: {checkpoint_epoch}")


def _atomic_path(path: Path) -> Path:
    """``path`` as a Path whose ``write_bytes`` is crash-safe (temporary file, fsync, rename).

    Ultralytics writes last.pt and best.pt with ``Path.write_bytes``, in place: a process killed
    during that write would leave a truncated last.pt and lose the resumable state. Our paths
    make the same call atomic.
    """
    from smalltrain.engine.fsutil import atomic_write_bytes

    class AtomicPath(type(Path())):  # type: ignore[misc]
        def write_bytes(self, data: Any) -> int:
            atomic_write_bytes(Path(str(self)), bytes(data))
            return len(data)

    return AtomicPath(str(path))


class CancelGuard:
    """Honours a :class:`CancelToken` so that a cancelled run always ends CANCELLED with a
    resumable last.pt (optimizer state kept), within one batch plus the save.

    Ultralytics' own ``trainer.stop`` validates and then runs ``final_eval``, which strips the
    optimizer from last.pt, so a stopped run could not be resumed; validation alone can take
    longer than a cancel's grace period. We end the loop by raising :class:`Cancelled` from a
    callback instead, graceful and immediate alike:

    - cancel during an epoch's batches (or before its validation): after the current batch we
      write last.pt ourselves (no validation) as of the previous epoch, so a resume redoes the
      interrupted epoch and the epoch numbers carry on. Ultralytics cannot restart the first
      epoch (it resumes from epoch 1 at the earliest), so a cancel in epoch 0 records epoch 0
      as done instead;
    - cancel during validation: Ultralytics finishes it and saves last.pt, and we stop there;
      in the final epoch that last.pt is written again as of the previous epoch, since a
      checkpoint of the final epoch could not be resumed;
    - cancel before the first batch of an epoch (setup resets ``trainer.stop``): caught at every
      epoch start; last.pt, if any, is the previous epoch's, still whole.

    best.pt is never touched by a cancel save (its fitness is written as NaN).
    """

    def __init__(self, token: CancelToken, monitor: ProgressMonitor | None = None) -> None:
        self.token = token
        self.monitor = monitor
        self.saved_epoch: int | None = None

    def attach(self, model: Any) -> None:
        add_hook(model, "on_pretrain_routine_start", self.make_saves_atomic)
        for name in ("on_pretrain_routine_end", "on_train_start", "on_train_epoch_start"):
            add_hook(model, name, self.check_before)
        add_hook(model, "on_train_batch_end", self.on_train_batch_end)
        add_hook(model, "on_train_epoch_end", self.on_train_batch_end)
        add_hook(model, "on_model_save", self.on_model_save)

    @staticmethod
    def make_saves_atomic(trainer: Any) -> None:
        """Swap the trainer's last/best paths for ones whose writes are atomic."""
        for name in ("last", "best"):
            path = getattr(trainer, name, None)
            if path is not None:
                setattr(trainer, name, _atomic_path(Path(path)))

    def check_before(self, trainer: Any) -> None:
        """Before any batch of an epoch: end now if a cancel is pending."""
        if self.token.is_set():
            raise Cancelled(self._existing_epoch(trainer))

    def on_train_batch_end(self, trainer: Any) -> None:
        """After a batch (or the last one): on cancel, save last.pt without validating; stop."""
        if not self.token.is_set():
            return
        epoch = int(trainer.epoch)
        self._save_as(trainer, epoch - 1 if epoch > 0 else 0)
        raise Cancelled(self.saved_epoch)

    def on_model_save(self, trainer: Any) -> None:
        """last.pt was just written after validation: end here if a cancel is pending."""
        if not self.token.is_set():
            return
        epoch = int(trainer.epoch)
        if self.monitor is not None:  # this epoch was validated: report it before leaving
            self.monitor.on_fit_epoch_end(trainer)
        if epoch + 1 >= int(trainer.epochs) and epoch > 0:
            self._save_as(trainer, epoch - 1)  # the final epoch's last.pt could not resume
        else:
            self.saved_epoch = epoch
            self._report(trainer, epoch)
        raise Cancelled(self.saved_epoch)

    def _save_as(self, trainer: Any, epoch: int) -> None:
        """Write last.pt (with optimizer state) recording ``epoch`` as the last one done."""
        current, fitness = trainer.epoch, trainer.fitness
        trainer.epoch = epoch
        trainer.fitness = math.nan  # NaN never equals best_fitness: best.pt stays untouched
        try:
            trainer.save_model()
        finally:
            self.saved_epoch = epoch
            trainer.epoch, trainer.fitness = current, fitness
        self._report(trainer, epoch)

    def _report(self, trainer: Any, epoch: int) -> None:
        if self.monitor is not None:
            step = self.monitor.global_step
            event = CheckpointSaved(str(trainer.last), epoch, step, "cancel")
            self.monitor.announce(trainer, event)

    def _existing_epoch(self, trainer: Any) -> int | None:
        last = getattr(trainer, "last", None)
        if last is not None and Path(last).exists() and getattr(trainer, "epoch", 0) > 0:
            return int(trainer.epoch) - 1
        return None


@contextlib.contextmanager
def redirect_output(log_file: Path) -> Iterator[None]:
    """Send Ultralytics' logger, progress bars and stray prints to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger("ultralytics")
    with open(log_file, "a", encoding="utf-8") as stream:
        handlers = [h for h in logger.handlers if type(h) is logging.StreamHandler]
        # Swap streams without setStream(): it flushes the old stream, which may be closed
        # by now (the handler was bound to whatever sys.stdout was when Ultralytics loaded).
        old = [h.stream for h in handlers]
        for handler in handlers:
            handler.stream = stream
        try:
            with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
                yield
        finally:
            for handler, previous in zip(handlers, old, strict=True):
                closed = getattr(previous, "closed", False)
                handler.stream = sys.stdout if closed else previous
