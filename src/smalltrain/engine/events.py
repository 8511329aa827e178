"""Training events, the MetricsHistory that records them, and the Callback base.

Every event is a frozen dataclass that round-trips through JSON (``to_dict`` /
``event_from_dict``), so the same objects travel in-process, across a child-process pipe and
through the job store. Metrics are flat dicts with slash keys: ``train/loss``, ``kl/beta``,
``val/loss``, ``time/step_s``.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from smalltrain.engine.plain import plain

#: How a training run ended (``TrainResult.status``, ``TrainingFinished.status``).
ResultStatus = Literal["completed", "cancelled"]

Metrics = Mapping[str, float]

log = logging.getLogger(__name__)


def _clean_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Coerce metric values to float; NaN/inf survive as float('nan')/inf."""
    return {str(k): float(v) for k, v in metrics.items()}


@dataclass(frozen=True)
class Event:
    """Base of all events. ``type`` names the event in its JSON form."""

    type: ClassVar[str] = "event"
    time: float = field(default_factory=time.time, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (non-finite floats become strings)."""
        out: dict[str, Any] = {"type": self.type}
        for f in dataclasses.fields(self):
            out[f.name] = plain(getattr(self, f.name))
        return out


def _unjson_metrics(value: Any) -> Any:
    """Undo ``plain`` inside a metrics dict: 'nan'/'inf' strings become floats again."""
    if isinstance(value, dict):
        return {k: _unjson_metrics(v) for k, v in value.items()}
    if value in ("nan", "inf", "-inf"):
        return float(value)
    return value


@dataclass(frozen=True)
class TrainingStarted(Event):
    """Training set up and is about to run its first step."""

    type: ClassVar[str] = "training_started"
    total_epochs: int
    steps_per_epoch: int
    start_epoch: int = 0
    start_step: int = 0
    resumed_from: str | None = None
    device: str = "cpu"
    info: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepMetrics(Event):
    """Metrics of one optimizer step (or of a skipped step)."""

    type: ClassVar[str] = "step"
    epoch: int
    step: int  # step within the epoch, 0-based
    global_step: int
    steps_per_epoch: int
    metrics: Metrics = field(default_factory=dict)


@dataclass(frozen=True)
class EpochMetrics(Event):
    """Summary metrics of one finished epoch (train and validation)."""

    type: ClassVar[str] = "epoch"
    epoch: int
    total_epochs: int
    metrics: Metrics = field(default_factory=dict)


@dataclass(frozen=True)
class WarningEvent(Event):
    """Something the user should know; training goes on."""

    type: ClassVar[str] = "warning"
    code: str  # e.g. "posterior_collapse", "overfitting", "nan_loss", "rollback"
    message: str
    epoch: int | None = None


@dataclass(frozen=True)
class CheckpointSaved(Event):
    """A checkpoint landed on disk."""

    type: ClassVar[str] = "checkpoint"
    path: str
    epoch: int
    global_step: int
    reason: str  # "interval", "cancel", "final", "best"


@dataclass(frozen=True)
class PreviewReady(Event):
    """Preview audio (or images) for an epoch were written."""

    type: ClassVar[str] = "preview"
    epoch: int
    paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class LogEvent(Event):
    """A line for the job log."""

    type: ClassVar[str] = "log"
    message: str
    level: str = "info"


@dataclass(frozen=True)
class TrainingFinished(Event):
    """Training ended: ``status`` is "completed" or "cancelled"."""

    type: ClassVar[str] = "training_finished"
    status: ResultStatus
    epochs_completed: int
    global_step: int
    best_checkpoint: str | None = None
    last_checkpoint: str | None = None
    metrics: Metrics = field(default_factory=dict)


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        TrainingStarted,
        StepMetrics,
        EpochMetrics,
        WarningEvent,
        CheckpointSaved,
        PreviewReady,
        LogEvent,
        TrainingFinished,
    )
}


def register_event_type(cls: type[Event]) -> type[Event]:
    """Register a task-specific event class so ``event_from_dict`` can rebuild it."""
    if cls.type in EVENT_TYPES and EVENT_TYPES[cls.type] is not cls:
        raise ValueError(f"event type {cls.type!r} is already registered")
    EVENT_TYPES[cls.type] = cls
    return cls


def event_from_dict(data: Mapping[str, Any]) -> Event:
    """Rebuild an event from ``Event.to_dict`` output.

    Raises:
        ValueError: the ``type`` is unknown.
    """
    kind = data.get("type")
    cls = EVENT_TYPES.get(str(kind))
    if cls is None:
        raise ValueError(f"unknown event type {kind!r}; known: {sorted(EVENT_TYPES)}")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        if f.name == "metrics":
            value = _unjson_metrics(value)
        elif isinstance(value, list) and str(f.type).startswith("tuple"):
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)


class Callback:
    """Base class of training callbacks: override the hooks you need.

    Hook names are checked when a subclass is defined, so a misspelt hook fails loudly
    instead of silently never running.
    """

    def on_train_start(self, event: TrainingStarted) -> None:
        """Called once before the first step."""

    def on_step_end(self, event: StepMetrics) -> None:
        """Called after every optimizer step."""

    def on_epoch_end(self, event: EpochMetrics) -> None:
        """Called after every epoch, with train and validation metrics."""

    def on_warning(self, event: WarningEvent) -> None:
        """Called for every warning event."""

    def on_checkpoint(self, event: CheckpointSaved) -> None:
        """Called when a checkpoint lands on disk."""

    def on_preview(self, event: PreviewReady) -> None:
        """Called when preview files are written."""

    def on_log(self, event: LogEvent) -> None:
        """Called for log lines."""

    def on_train_end(self, event: TrainingFinished) -> None:
        """Called once when training ends (completed or cancelled)."""

    def on_event(self, event: Event) -> None:
        """Called for every event, before the specific hook."""

    _HOOKS: ClassVar[dict[type[Event], str]] = {
        TrainingStarted: "on_train_start",
        StepMetrics: "on_step_end",
        EpochMetrics: "on_epoch_end",
        WarningEvent: "on_warning",
        CheckpointSaved: "on_checkpoint",
        PreviewReady: "on_preview",
        LogEvent: "on_log",
        TrainingFinished: "on_train_end",
    }

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        known = set(Callback._HOOKS.values()) | {"on_event"}
        for name in vars(cls):
            if name.startswith("on_") and name not in known:
                raise TypeError(
                    f"{cls.__name__}.{name} is not a Callback hook; known hooks: {sorted(known)}"
                )

    def __call__(self, event: Event) -> None:
        self.on_event(event)
        hook = self._HOOKS.get(type(event))
        if hook is not None:
            getattr(self, hook)(event)


Subscriber = Callable[[Event], None]


class MetricsHistory:
    """Records step and epoch metrics and fans every event out to subscribers.

    Thread-safe. Its ``state_dict`` holds only plain Python values, so it can travel inside a
    checkpoint loaded with ``torch.load(weights_only=True)``.
    """

    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []
        self.epochs: list[dict[str, Any]] = []
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add a subscriber (a callable or a Callback); returns a function that removes it."""
        with self._lock:
            self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            with self._lock:
                if subscriber in self._subscribers:
                    self._subscribers.remove(subscriber)

        return unsubscribe

    def emit(self, event: Event) -> None:
        """Record ``event`` (if it carries metrics) and deliver it to every subscriber."""
        with self._lock:
            if isinstance(event, StepMetrics):
                self.steps.append(
                    {"epoch": event.epoch, "step": event.global_step, **dict(event.metrics)}
                )
            elif isinstance(event, EpochMetrics):
                self.epochs.append({"epoch": event.epoch, **dict(event.metrics)})
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            try:
                subscriber(event)
            except Exception:  # a broken progress bar or UI must not stop training
                log.exception("event subscriber %r failed on a %s event", subscriber, event.type)

    def epoch_values(self, key: str) -> list[float]:
        """Return the per-epoch series of one metric (missing epochs are skipped)."""
        with self._lock:
            return [float(e[key]) for e in self.epochs if key in e]

    def last_epoch(self) -> dict[str, Any]:
        with self._lock:
            return dict(self.epochs[-1]) if self.epochs else {}

    def truncate(self, global_step: int, epoch: int) -> None:
        """Drop records after a rollback point so a resumed history has no duplicates."""
        with self._lock:
            self.steps = [s for s in self.steps if s["step"] <= global_step]
            self.epochs = [e for e in self.epochs if e["epoch"] < epoch]

    def state_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "steps": [dict(s) for s in self.steps],
                "epochs": [dict(e) for e in self.epochs],
            }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        with self._lock:
            self.steps = [dict(s) for s in state.get("steps", [])]
            self.epochs = [dict(e) for e in state.get("epochs", [])]
