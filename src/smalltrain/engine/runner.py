"""The one way a task's ``train`` is called, and ``TrainingRunner``, a thread around it.

``call_train(task, ctx)`` is the path every job takes: the service's ``run_task`` (which every
executor ends in: inline, thread, process and Ray) builds a ``JobContext`` from an attempt's
spec and calls it, and ``TrainingRunner`` (the public, task-object API of the first version)
calls it on a daemon thread. It makes the run folder, writes every event as one JSON line to
``run_dir/events.jsonl`` (``engine.eventlog``), checks that ``train`` returned a
``TrainResult``, and turns the two failures that are the machine's state, not a bug, into our
own errors: a full disk (``DiskFull``, naming the folder) and a GPU out of memory
(``GpuOutOfMemory``, naming the cap and what to change).

``TrainingRunner`` adds start/cancel/resume/wait and a ``MetricsHistory``. Exceptions raised by
the task are caught on the worker thread: they land in ``runner.error`` /
``runner.error_traceback`` and in an error ``LogEvent``, and never reach the caller's thread.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from smalltrain.engine.context import (
    CancelMode,
    CancelToken,
    JobContext,
    ResourceLimits,
    Task,
    TrainResult,
)
from smalltrain.engine.eventlog import EVENTS_FILE, EventLog
from smalltrain.engine.events import CheckpointSaved, Event, LogEvent, MetricsHistory
from smalltrain.engine.fsutil import disk_full_error, is_disk_full
from smalltrain.engine.resources import gpu_oom_error
from smalltrain.errors import (
    CheckpointError,
    DiskFull,
    GpuOutOfMemory,
    NotResumable,
    SmallTrainError,
    TrainingError,
)

__all__ = ["EVENTS_FILE", "TrainingRunner", "call_train", "translate_failure"]

log = logging.getLogger(__name__)


def call_train(task: Task, ctx: JobContext) -> TrainResult:
    """Run ``task.train(ctx)`` in this thread: the one path every job takes (module docstring).

    Raises:
        DiskFull: a write found no space (the task's own ``open().write()`` included).
        GpuOutOfMemory: CUDA ran out of memory (the job's cap or the card's size).
        TrainingError: ``train`` returned something other than a ``TrainResult``.
        Exception: whatever else the task raised, unchanged.
    """
    events = EventLog(ctx.run_dir / EVENTS_FILE)  # the run's own record (see eventlog)
    emit = ctx.emit

    def log_and_emit(event: Event) -> None:
        events(event)
        emit(event)

    try:
        ctx.run_dir.mkdir(parents=True, exist_ok=True)
        result = task.train(dataclasses.replace(ctx, emit=log_and_emit))
        if not isinstance(result, TrainResult):
            raise TrainingError(
                f"{type(task).__name__}.train returned {type(result).__name__}, not a TrainResult"
            )
        return result
    except Exception as exc:
        failure = translate_failure(exc, ctx)
        # The run folder keeps why it ended, whoever ran it (the database may be elsewhere).
        events(LogEvent(message=f"training failed: {_one_line(failure)}", level="error"))
        if failure is exc:
            raise
        raise failure from exc
    finally:
        events.close()


def translate_failure(exc: Exception, ctx: JobContext) -> Exception:
    """``exc`` as the error a user should read: a full disk and a GPU out of memory become
    ``DiskFull`` / ``GpuOutOfMemory``; anything else is returned unchanged."""
    if isinstance(exc, (DiskFull, GpuOutOfMemory)):
        return exc
    if is_disk_full(exc):
        return disk_full_error(_failed_folder(exc, ctx.run_dir), None, exc, what="files in")
    cap = ctx.limits.max_gpu_memory_percent if ctx.limits else None
    oom = gpu_oom_error(exc, cap, ctx.device or "cuda")
    return oom if oom is not None else exc


def _failed_folder(exc: BaseException | None, run_dir: Path) -> Path:
    """The folder of the file a failed write named (an OSError's filename), else the run's."""
    while exc is not None:
        name = getattr(exc, "filename", None)
        if isinstance(name, (str, os.PathLike)):
            return Path(name).parent
        exc = exc.__cause__ or exc.__context__
    return Path(run_dir)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _guarded(subscriber: Callable[[Event], None]) -> Callable[[Event], None]:
    """Wrap a subscriber so that a bug in it (a progress bar, a UI) cannot stop training."""

    def call(event: Event) -> None:
        try:
            subscriber(event)
        except Exception:
            log.exception("event subscriber %r failed on a %s event", subscriber, event.type)

    return call


class TrainingRunner:
    """Runs ``task.train`` in the background, through ``call_train`` on a daemon thread.

    Args:
        task: any object implementing the Task protocol; only ``train`` is called.
        config: the task's validated config, passed on in the JobContext.
        dataset_path: the dataset folder or file.
        run_dir: where the task writes checkpoints, previews and ``events.jsonl``.
        job_id: an id for the JobContext; a random hex id when None.
        device: the device string handed to the task.
        limits: the job's resource limits, handed to the task in its JobContext (the
            process-wide settings, torch threads and the GPU memory fraction, are applied only
            in a job's own process: use the process executor for those).
        cache_dir: the task's cache folder (the spectrogram cache), or None.
        subscribers: callables that receive every event. An exception in one is logged and
            ignored. Subscribing later through ``runner.history.subscribe`` is not guarded.
    """

    def __init__(
        self,
        task: Task,
        config: Any,
        dataset_path: Path,
        run_dir: Path,
        *,
        job_id: str | None = None,
        device: str = "cpu",
        limits: ResourceLimits | None = None,
        cache_dir: Path | None = None,
        subscribers: Iterable[Callable[[Event], None]] = (),
    ) -> None:
        self.task = task
        self.config = config
        self.dataset_path = Path(dataset_path)
        self.run_dir = Path(run_dir)
        self.job_id = job_id or uuid.uuid4().hex[:12]
        self.device = device
        self.limits = limits or ResourceLimits()
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.history = MetricsHistory()
        for subscriber in subscribers:
            self.history.subscribe(_guarded(subscriber))
        self.result: TrainResult | None = None
        self.error: BaseException | None = None
        self.error_traceback: str | None = None
        self.resumed_from: Path | None = None
        self._status = "idle"
        self._token = CancelToken()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._cancel_at: float | None = None
        self._cancel_checkpoint_at: float | None = None
        self._stopped_at: float | None = None

    # --- public API ------------------------------------------------------------------------

    @property
    def status(self) -> str:
        """One of "idle", "running", "completed", "cancelled", "failed"."""
        return self._status

    @property
    def cancel_token(self) -> CancelToken:
        """The token of the current (or last) attempt."""
        return self._token

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def cancel_latency(self) -> float | None:
        """Seconds from the last ``cancel()`` call to the worker thread ending, if both happened."""
        if self._cancel_at is None or self._stopped_at is None:
            return None
        return max(0.0, self._stopped_at - self._cancel_at)

    @property
    def cancel_checkpoint_latency(self) -> float | None:
        """Seconds from the last ``cancel()`` call to the first checkpoint saved after it."""
        if self._cancel_at is None or self._cancel_checkpoint_at is None:
            return None
        return max(0.0, self._cancel_checkpoint_at - self._cancel_at)

    def is_running(self) -> bool:
        """Whether the worker thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, resume_from: Path | None = None) -> None:
        """Start training on a daemon thread, from scratch or from ``resume_from``.

        Raises:
            SmallTrainError: this runner is already running.
        """
        with self._lock:
            if self.is_running():
                raise SmallTrainError(
                    f"job {self.job_id} is already running; cancel it or wait for it first"
                )
            self.result = None
            self.error = None
            self.error_traceback = None
            self.resumed_from = Path(resume_from) if resume_from is not None else None
            self._token = CancelToken()
            self._cancel_at = self._cancel_checkpoint_at = self._stopped_at = None
            ctx = JobContext(
                job_id=self.job_id,
                config=self.config,
                dataset_path=self.dataset_path,
                run_dir=self.run_dir,
                cancel=self._token,
                emit=self._emit,
                resume_from=self.resumed_from,
                device=self.device,
                limits=self.limits,
                cache_dir=self.cache_dir,
            )
            self._status = "running"
            self._thread = threading.Thread(
                target=self._run, args=(ctx,), name=f"smalltrain-{self.job_id}", daemon=True
            )
            self._thread.start()

    def cancel(
        self,
        reason: str = "cancelled by user",
        mode: CancelMode = "graceful",
        timeout: float | None = None,
    ) -> bool:
        """Ask the task to stop (it checkpoints and returns at its next cancel check).

        Args:
            reason: a short text the task may record.
            mode: "graceful" or "immediate" (see CancelToken).
            timeout: when given, wait up to this many seconds for the thread to end.

        Returns:
            Whether the worker has stopped (True when it was not running).
        """
        thread = self._thread
        if thread is None or not thread.is_alive():
            return True
        self._cancel_at = time.monotonic()
        self._token.cancel(reason, mode)
        # A subscriber may cancel from the worker thread itself; it must not join itself.
        if timeout is not None and threading.current_thread() is not thread:
            thread.join(timeout)
        return not thread.is_alive()

    def resume(self, checkpoint: Path | None = None) -> None:
        """Start again from ``checkpoint``, or from the newest valid one in ``run_dir/checkpoints``.

        Raises:
            NotResumable: there is no valid checkpoint to resume from (the message says why).
            SmallTrainError: this runner is already running.
        """
        # torch loads here, not when the module is imported: run_task imports this module
        # and light commands (`jobs list`) must start without torch.
        from smalltrain.engine.checkpoints import find_resumable, load_checkpoint

        if self.is_running():
            raise SmallTrainError(
                f"job {self.job_id} is already running; cancel it or wait for it first"
            )
        if checkpoint is None:
            found = find_resumable(self.checkpoint_dir)
            if found is None:
                raise NotResumable(
                    f"job {self.job_id} cannot be resumed: no valid checkpoint in "
                    f"{self.checkpoint_dir}; start the training again from scratch"
                )
            checkpoint = found[0]
        else:
            try:
                load_checkpoint(checkpoint)
            except CheckpointError as exc:
                raise NotResumable(f"job {self.job_id} cannot be resumed: {exc}") from exc
        self.start(resume_from=checkpoint)

    def wait(self, timeout: float | None = None) -> TrainResult | None:
        """Wait for the worker thread; return the result (None if still running or failed).

        Never raises the task's exception: see ``error`` and ``error_traceback``.
        """
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.result

    # --- worker thread ---------------------------------------------------------------------

    def _run(self, ctx: JobContext) -> None:
        try:
            result = call_train(self.task, ctx)
            self.result = result
            self._status = "cancelled" if result.status == "cancelled" else "completed"
        except BaseException as exc:  # the caller reads it from runner.error
            self.error = exc
            self.error_traceback = traceback.format_exc()
            self._status = "failed"
            self._report_failure(exc)
        finally:
            self._stopped_at = time.monotonic()

    def _report_failure(self, exc: BaseException) -> None:
        try:
            self.history.emit(LogEvent(message=f"training failed: {_one_line(exc)}", level="error"))
        except Exception:
            log.exception("could not report the failure of job %s", self.job_id)

    def _emit(self, event: Event) -> None:
        """Hand ``event`` to the history and subscribers (``call_train`` logs it first)."""
        if (
            isinstance(event, CheckpointSaved)
            and self._cancel_at is not None
            and self._cancel_checkpoint_at is None
        ):
            self._cancel_checkpoint_at = time.monotonic()
        self.history.emit(event)
