"""Events round-trip through JSON; Callback checks hook names; MetricsHistory fans out."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from smalltrain.engine.events import (
    EVENT_TYPES,
    Callback,
    CheckpointSaved,
    EpochMetrics,
    Event,
    LogEvent,
    MetricsHistory,
    PreviewReady,
    StepMetrics,
    TrainingFinished,
    TrainingStarted,
    WarningEvent,
    event_from_dict,
)

EXAMPLES: list[Event] = [
    TrainingStarted(total_epochs=3, steps_per_epoch=10, info={"preset": "tiny"}),
    StepMetrics(epoch=0, step=1, global_step=2, steps_per_epoch=10, metrics={"train/loss": 0.5}),
    EpochMetrics(epoch=1, total_epochs=3, metrics={"val/loss": 0.25, "train/loss": 0.5}),
    WarningEvent(code="overfitting", message="val is 30% above train", epoch=2),
    CheckpointSaved(path="/r/ckpt.pt", epoch=1, global_step=20, reason="cancel"),
    PreviewReady(epoch=1, paths=("/r/a.wav", "/r/b.wav")),
    LogEvent(message="hello", level="error"),
    TrainingFinished(status="completed", epochs_completed=3, global_step=30, metrics={"x": 1.0}),
]


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: e.type)
def test_round_trip_through_strict_json(event: Event) -> None:
    text = json.dumps(event.to_dict(), allow_nan=False)
    assert event_from_dict(json.loads(text)) == event


def test_every_builtin_type_has_an_example() -> None:
    assert {e.type for e in EXAMPLES} == set(EVENT_TYPES)


def test_non_finite_metrics_survive_json() -> None:
    event = StepMetrics(
        epoch=0,
        step=0,
        global_step=1,
        steps_per_epoch=1,
        metrics={"train/loss": math.nan, "grad/norm": math.inf, "x": -math.inf},
    )
    data = json.loads(json.dumps(event.to_dict(), allow_nan=False))
    assert data["metrics"] == {"train/loss": "nan", "grad/norm": "inf", "x": "-inf"}
    back = event_from_dict(data)
    assert isinstance(back, StepMetrics)
    assert math.isnan(back.metrics["train/loss"])
    assert back.metrics["grad/norm"] == math.inf
    assert back.metrics["x"] == -math.inf


def test_unknown_event_type_rejected() -> None:
    with pytest.raises(ValueError, match="unknown event type 'stpe'"):
        event_from_dict({"type": "stpe"})


def test_misspelt_callback_hook_fails_at_class_definition() -> None:
    with pytest.raises(TypeError, match="on_epoch_ends is not a Callback hook"):

        class Typo(Callback):
            def on_epoch_ends(self, event: EpochMetrics) -> None:
                pass


def test_callback_dispatches_on_event_then_specific_hook() -> None:
    calls: list[str] = []

    class Recorder(Callback):
        def on_event(self, event: Event) -> None:
            calls.append(f"any:{event.type}")

        def on_epoch_end(self, event: EpochMetrics) -> None:
            calls.append(f"epoch:{event.epoch}")

    history = MetricsHistory()
    history.subscribe(Recorder())
    history.emit(EXAMPLES[2])
    history.emit(EXAMPLES[6])
    assert calls == ["any:epoch", "epoch:1", "any:log"]


def test_history_subscribe_unsubscribe_and_records() -> None:
    history = MetricsHistory()
    seen: list[Event] = []
    unsubscribe = history.subscribe(seen.append)
    for event in EXAMPLES:
        history.emit(event)
    unsubscribe()
    unsubscribe()  # a second call is harmless
    history.emit(EXAMPLES[1])
    assert seen == EXAMPLES
    assert len(history.steps) == 2
    assert history.steps[0] == {"epoch": 0, "step": 2, "train/loss": 0.5}
    assert history.epoch_values("val/loss") == [0.25]
    assert history.last_epoch() == {"epoch": 1, "val/loss": 0.25, "train/loss": 0.5}


def _step(global_step: int, epoch: int) -> StepMetrics:
    return StepMetrics(
        epoch=epoch, step=0, global_step=global_step, steps_per_epoch=2, metrics={"l": 1.0}
    )


def test_history_state_dict_and_truncate() -> None:
    history = MetricsHistory()
    for gs in range(1, 7):
        history.emit(_step(gs, (gs - 1) // 2))
    for epoch in range(3):
        history.emit(EpochMetrics(epoch=epoch, total_epochs=3, metrics={"val/loss": 1.0}))
    state: dict[str, Any] = history.state_dict()
    json.dumps(state)  # plain values only

    restored = MetricsHistory()
    restored.load_state_dict(state)
    assert restored.state_dict() == state
    restored.truncate(global_step=4, epoch=2)
    assert [s["step"] for s in restored.steps] == [1, 2, 3, 4]
    assert [e["epoch"] for e in restored.epochs] == [0, 1]
    assert len(history.steps) == 6  # the original is untouched
