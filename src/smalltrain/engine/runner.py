"""TrainingRunner: run one task's ``train`` on a daemon thread, with cancel, resume and wait.

Every event the task emits goes to ``runner.history`` (and so to its subscribers) and, as one
JSON line, to ``run_dir/events.jsonl``. Exceptions raised by the task are caught on the worker
thread: they land in ``runner.error`` / ``runner.error_traceback`` and in an error ``LogEvent``,
and never reach the caller's thread.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from smalltrain.engine.checkpoints import find_resumable, load_checkpoint
from smalltrain.engine.context import CancelMode, CancelToken, JobContext, Task, TrainResult
from smalltrain.engine.eventlog import EVENTS_FILE
from smalltrain.engine.events import (
    CheckpointSaved,
    EpochMetrics,
    Event,
    LogEvent,
    MetricsHistory,
    TrainingFinished,
    WarningEvent,
)
from smalltrain.engine.fsutil import disk_full_error, is_disk_full
from smalltrain.errors import CheckpointError, NotResumable, SmallTrainError, TrainingError

__all__ = ["EVENTS_FILE", "TrainingRunner"]

log = logging.getLogger(__name__)

# Events after which the events log is flushed; step events stay in the buffer.
_FLUSH_ON = (EpochMetrics, CheckpointSaved, WarningEvent, LogEvent, TrainingFinished)


def _guarded(subscriber: Callable[[Event], None]) -> Callable[[Event], None]:
    """Wrap a subscriber so that a bug in it (a progress bar, a UI) cannot stop training."""

    def call(event: Event) -> None:
        try:
            subscriber(event)
        except Exception:
            log.exception("event subscriber %r failed on a %s event", subscriber, event.type)

    return call


class TrainingRunner:
    """Runs ``task.train`` in the background.

    Args:
        task: any object implementing the Task protocol; only ``train`` is called.
        config: the task's validated config, passed on in the JobContext.
        dataset_path: the dataset folder or file.
        run_dir: where the task writes checkpoints, previews and ``events.jsonl``.
        job_id: an id for the JobContext; a random hex id when None.
        device: the device string handed to the task.
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
        subscribers: Iterable[Callable[[Event], None]] = (),
    ) -> None:
        self.task = task
        self.config = config
        self.dataset_path = Path(dataset_path)
        self.run_dir = Path(run_dir)
        self.job_id = job_id or uuid.uuid4().hex[:12]
        self.device = device
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
        self._log_lock = threading.Lock()
        self._log_file: IO[str] | None = None
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
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._log_file = open(self.run_dir / EVENTS_FILE, "a", encoding="utf-8")  # noqa: SIM115
            ctx = JobContext(
                job_id=self.job_id,
                config=self.config,
                dataset_path=self.dataset_path,
                run_dir=self.run_dir,
                cancel=self._token,
                emit=self._emit,
                resume_from=self.resumed_from,
                device=self.device,
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
            result = self.task.train(ctx)
            if not isinstance(result, TrainResult):
                raise TrainingError(
                    f"{type(self.task).__name__}.train returned {type(result).__name__}, "
                    "not a TrainResult"
                )
            self.result = result
            self._status = "cancelled" if result.status == "cancelled" else "completed"
        except BaseException as exc:  # the caller reads it from runner.error
            self.error = exc
            self.error_traceback = traceback.format_exc()
            self._status = "failed"
            self._report_failure(exc)
        finally:
            self._stopped_at = time.monotonic()
            self._close_log()

    def _report_failure(self, exc: BaseException) -> None:
        message = f"training failed: {type(exc).__name__}: {exc}"
        try:
            self._emit(LogEvent(message=message, level="error"))
        except Exception:
            log.exception("could not report the failure of job %s", self.job_id)

    def _emit(self, event: Event) -> None:
        """Write ``event`` to the events log, then hand it to the history and subscribers."""
        if (
            isinstance(event, CheckpointSaved)
            and self._cancel_at is not None
            and self._cancel_checkpoint_at is None
        ):
            self._cancel_checkpoint_at = time.monotonic()
        self._write_event(event)
        self.history.emit(event)

    def _write_event(self, event: Event) -> None:
        line = json.dumps(event.to_dict(), default=str)
        with self._log_lock:
            if self._log_file is None:
                return
            try:
                self._log_file.write(line + "\n")
                if isinstance(event, _FLUSH_ON):
                    self._log_file.flush()
            except OSError as exc:
                if not is_disk_full(exc):
                    raise
                path = self.run_dir / EVENTS_FILE
                raise disk_full_error(path, len(line) + 1, exc, what="events log") from exc

    def _close_log(self) -> None:
        with self._log_lock:
            if self._log_file is not None:
                # A full disk already failed the job with its own message; the log's last
                # buffered lines are what it could not keep.
                with contextlib.suppress(OSError):
                    self._log_file.close()
                self._log_file = None
