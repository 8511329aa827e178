"""The cancel grace rule that the process and Ray executors share (service/grace.py)."""

from __future__ import annotations

from smalltrain.service.execution.grace import (
    IMMEDIATE_GRACE_S,
    STEP_GRACE_FACTOR,
    StepTimer,
    cancel_grace,
)


def test_a_graceful_cancel_waits_for_the_slowest_step_or_the_save() -> None:
    assert cancel_grace(30.0, 2.0, "graceful") == 30.0
    assert cancel_grace(30.0, 20.0, "graceful") == STEP_GRACE_FACTOR * 20.0
    assert cancel_grace(30.0, 20.0, "immediate") == IMMEDIATE_GRACE_S


def test_steps_are_timed_within_an_epoch_only() -> None:
    timer = StepTimer()
    timer.see({"type": "epoch_end"})
    timer.see({"type": "step", "step": 0})  # an epoch's first step has nothing before it
    assert timer.slowest_s == 0.0
    timer.see({"type": "step", "step": 1})
    assert timer.slowest_s > 0.0
    timer.see("not an event")
