"""The real detection task with one pause, so a test can cancel it at an exact point.

``PacedDetectTask`` is ``DetectTask`` (real Ultralytics training) plus one Ultralytics callback,
registered before the task's own: at the point named by ``$SMALLTRAIN_TEST_PAUSE``
("HOOK:EPOCH:BATCH", e.g. "on_train_batch_start:1:1") it emits a log event "test pause ..." and
waits for the job's cancel token (up to two minutes). A test sees the event, runs
``smalltrain jobs cancel``, and the cancel lands exactly there, in a real child process, as it
would on a slow machine. It pauses once per run folder and point, so a resumed attempt runs
through, or pauses at the next point when the test names another.

``HeldWriterDetectTask`` (``detect-held``) also holds the trainer's checkpoint writer thread
with the N-th last.pt written to its temporary file and fsynced but not yet renamed
(``$SMALLTRAIN_TEST_HOLD`` = "MODE:N"): it writes ``test-held`` in the run dir (the process id
and the temporary file) and then, in mode ``kill``, blocks until the test kills the process
(a real crash between the snapshot and the rename), or, in mode ``cancel``, until the job is
cancelled (a cancel that lands while an older snapshot is still being written).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from smalltrain.engine.context import JobContext
from smalltrain.engine.events import LogEvent
from smalltrain.tasks.detect.task import DetectTask

TARGET = "tests.support.pacedtask:PacedDetectTask"
HELD_TARGET = "tests.support.pacedtask:HeldWriterDetectTask"
PAUSE_ENV = "SMALLTRAIN_TEST_PAUSE"
HOLD_ENV = "SMALLTRAIN_TEST_HOLD"
HELD_MARKER = "test-held"
REPO_ROOT = Path(__file__).resolve().parents[2]


def install(monkeypatch: Any) -> None:
    """Make the task known here and in every child and subprocess a test starts."""
    from smalltrain.service.execution.executors import EXTRA_TASKS_ENV, register_extra_tasks

    monkeypatch.setenv(EXTRA_TASKS_ENV, f"detect-paced={TARGET},detect-held={HELD_TARGET}")
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
        marker = Path(ctx.run_dir) / f"test-paused-{spec.replace(':', '-')}"
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


class HeldWriterDetectTask(PacedDetectTask):
    """``PacedDetectTask`` whose checkpoint writer holds before one rename (module docstring)."""

    name = "detect-held"

    def _model_and_args(self, ctx: JobContext, *args: Any) -> tuple[Any, dict[str, Any], int]:
        model, kwargs, start = super()._model_and_args(ctx, *args)
        spec = os.environ.get(HOLD_ENV, "")
        marker = Path(ctx.run_dir) / HELD_MARKER
        if spec and not marker.exists():
            mode, nth = spec.split(":")
            writer = _held_writer(ctx, mode, int(nth), marker)
            trainer = kwargs["trainer"]  # the task's SmallDataTrainer class for this run
            kwargs["trainer"] = type("HeldTrainer", (trainer,), {"writer_class": writer})
        return model, kwargs, start


def _held_writer(ctx: JobContext, mode: str, nth: int, marker: Path) -> type:
    from smalltrain.tasks.detect.writer import CheckpointWriter

    class HeldWriter(CheckpointWriter):
        seen = 0

        def _before_replace(self, tmp: Path, target: Path) -> None:
            if target.name != "last.pt":
                return
            HeldWriter.seen += 1
            if HeldWriter.seen != nth or marker.exists():
                return
            marker.write_text(f"{os.getpid()} {tmp}")
            if mode == "kill":
                threading.Event().wait(120)  # the test kills this process here
            else:
                ctx.cancel.wait(120)

    return HeldWriter
