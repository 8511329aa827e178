"""The real detection task with one pause, so a test can cancel it at an exact point.

``PacedDetectTask`` is ``DetectTask`` (real Ultralytics training) plus one Ultralytics callback,
registered before the task's own: at the point named by ``$SMALLTRAIN_TEST_PAUSE``
("HOOK:EPOCH:BATCH", e.g. "on_train_batch_start:1:1") it emits a log event "test pause ..." and
waits for the job's cancel token (up to two minutes). A test sees the event, runs
``smalltrain jobs cancel``, and the cancel lands exactly there, in a real child process, as it
would on a slow machine. It pauses once per run folder, so the resumed attempt runs through.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from smalltrain.engine.context import JobContext
from smalltrain.engine.events import LogEvent
from smalltrain.tasks.detection.task import DetectTask

TARGET = "tests.support.pacedtask:PacedDetectTask"
PAUSE_ENV = "SMALLTRAIN_TEST_PAUSE"
REPO_ROOT = Path(__file__).resolve().parents[2]


def install(monkeypatch: Any) -> None:
    """Make the task known here and in every child and subprocess a test starts."""
    from smalltrain.service.executors import EXTRA_TASKS_ENV, register_extra_tasks

    monkeypatch.setenv(EXTRA_TASKS_ENV, f"detect-paced={TARGET}")
    path = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(REPO_ROOT), path) if p))
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    register_extra_tasks()


class PacedDetectTask(DetectTask):
    """``DetectTask`` that waits for a cancel at one point (see the module docstring)."""

    name = "detect-paced"

    def _model_and_args(self, ctx: JobContext, *args: Any) -> tuple[Any, dict[str, Any], int]:
        model, kwargs, start = super()._model_and_args(ctx, *args)
        spec = os.environ.get(PAUSE_ENV, "")
        marker = Path(ctx.run_dir) / "test-paused-once"
        if spec and not marker.exists():
            hook, epoch, batch = spec.split(":")
            _attach_pause(model, ctx, hook, int(epoch), int(batch), marker)
        return model, kwargs, start


def _attach_pause(
    model: Any, ctx: JobContext, hook: str, epoch: int, batch: int, marker: Path
) -> None:
    """Pause at ``hook`` in ``epoch`` (and, for batch hooks, before/after batch ``batch``).

    Validator hooks (``on_val_start``) get the validator, not the trainer: the epoch is the
    one the trainer's own hooks saw last.
    """
    seen = {"epoch": -1, "batch": -1}

    def epoch_start(trainer: Any) -> None:
        seen["epoch"], seen["batch"] = int(trainer.epoch), -1

    def batch_start(trainer: Any) -> None:
        seen["batch"] += 1

    def pause(_: Any) -> None:
        here = seen["batch"] if "batch" in hook else batch
        if seen["epoch"] != epoch or here != batch or marker.exists():
            return
        marker.touch()
        ctx.emit(LogEvent(f"test pause at {hook} epoch {epoch} batch {batch}"))
        ctx.cancel.wait(120)

    model.add_callback("on_train_epoch_start", epoch_start)
    model.add_callback("on_train_batch_start", batch_start)
    model.add_callback(hook, pause)
