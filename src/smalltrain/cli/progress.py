"""A rich progress view driven by training events (a subscriber and a context manager)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from smalltrain.engine.events import (
    CheckpointSaved,
    EpochMetrics,
    Event,
    LogEvent,
    PreviewReady,
    StepMetrics,
    TrainingFinished,
    TrainingStarted,
    WarningEvent,
)

# Metric keys shown on the bar, first match wins per slot: (label, candidate keys).
_BAR_KEYS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("loss", ("train/loss",)),
    ("KL", ("train/kl",)),
    ("β", ("kl/beta",)),
    ("box", ("train/box_loss",)),
    ("cls", ("train/cls_loss",)),
)
_EPOCH_KEYS = ("val/loss", "val/kl_raw", "val/sc", "pca/sc", "val/mAP50", "val/mAP50-95")


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e4):
        return f"{value:.2e}"
    return f"{value:.4f}"


def _summary(metrics: Mapping[str, float], keys: tuple[tuple[str, tuple[str, ...]], ...]) -> str:
    parts = []
    for label, candidates in keys:
        for key in candidates:
            if key in metrics:
                parts.append(f"{label} {_fmt(metrics[key])}")
                break
    return "  ".join(parts)


class EventProgress:
    """Shows epoch/step progress, loss, KL, β and ETA; prints warnings as they happen.

    Use as ``with EventProgress() as view: runner.history.subscribe(view)``.
    """

    def __init__(self, console: Console | None = None, *, show_checkpoints: bool = True) -> None:
        self.console = console or Console(markup=False, highlight=False)
        self.show_checkpoints = show_checkpoints
        self.progress = Progress(
            TextColumn("{task.fields[epoch]}", style="bold", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[metrics]}", markup=False),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._task: TaskID | None = None
        self._steps_per_epoch = 0
        self._total_epochs = 0
        self.warnings: list[WarningEvent] = []
        self.finished: TrainingFinished | None = None

    def __enter__(self) -> EventProgress:
        self.progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.progress.stop()

    def _ensure_task(self, total: int, completed: int) -> TaskID:
        if self._task is None:
            self._task = self.progress.add_task(
                "train", total=max(total, 1), completed=completed, epoch="", metrics=""
            )
        return self._task

    def __call__(self, event: Event) -> None:
        handler = getattr(self, f"_on_{event.type}", None)
        if handler is not None:
            handler(event)

    def _on_training_started(self, event: TrainingStarted) -> None:
        self._steps_per_epoch = event.steps_per_epoch
        self._total_epochs = event.total_epochs
        total = event.steps_per_epoch * event.total_epochs
        done = event.start_epoch * event.steps_per_epoch + event.start_step
        task = self._ensure_task(total, done)
        self.progress.update(task, total=max(total, 1), completed=done)
        where = f" (resumed from {event.resumed_from})" if event.resumed_from else ""
        self.console.print(f"training on {event.device}{where}")

    def _on_step(self, event: StepMetrics) -> None:
        total = max(event.steps_per_epoch * max(self._total_epochs, 1), 1)
        task = self._ensure_task(total, 0)
        self.progress.update(
            task,
            completed=event.epoch * event.steps_per_epoch + event.step + 1,
            epoch=f"epoch {event.epoch + 1}/{self._total_epochs or '?'}",
            metrics=_summary(event.metrics, _BAR_KEYS),
        )

    def _on_epoch(self, event: EpochMetrics) -> None:
        shown = "  ".join(
            f"{k} {_fmt(event.metrics[k])}" for k in _EPOCH_KEYS if k in event.metrics
        )
        if shown:
            self.console.print(f"epoch {event.epoch + 1}/{event.total_epochs}: {shown}")

    def _on_warning(self, event: WarningEvent) -> None:
        self.warnings.append(event)
        self.console.print(
            Text.assemble(("warning", "yellow"), f" ({event.code}): {event.message}")
        )

    def _on_checkpoint(self, event: CheckpointSaved) -> None:
        if self.show_checkpoints and event.reason in ("cancel", "final"):
            self.console.print(f"checkpoint ({event.reason}): {event.path}")

    def _on_preview(self, event: PreviewReady) -> None:
        if event.paths:
            folder = event.paths[0].rsplit("/", 1)[0]
            self.console.print(f"previews for epoch {event.epoch + 1}: {folder}")

    def _on_log(self, event: LogEvent) -> None:
        if event.level in ("warning", "error"):
            self.console.print(Text.assemble((event.level, "red"), f": {event.message}"))

    def _on_training_finished(self, event: TrainingFinished) -> None:
        self.finished = event
