"""What the job commands share: opening the manager, a detached worker, following a job.

``follow_job`` shows a job's progress (``EventProgress``) until it ends. While it runs, the
first Ctrl-C asks for a graceful cancel (the job writes a checkpoint and ends CANCELLED), the
second for an immediate one (the process is stopped within about a second), and a third
leaves at once without waiting.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from smalltrain.cli.common import console, err_console, home, say, styled
from smalltrain.engine.jobs import JobStatus, TrainingJob
from smalltrain.errors import SmallTrainError

if TYPE_CHECKING:
    # These load when a command uses them, not at start-up (`smalltrain --help`).
    from smalltrain.engine.context import CancelMode
    from smalltrain.engine.events import TrainingFinished
    from smalltrain.service.execution.executors import Executor
    from smalltrain.service.manager import TrainingManager

__all__ = ["exit_for", "follow_job", "open_manager", "spawn_worker"]


def open_manager(executor: str | Executor = "process", **kwargs: Any) -> TrainingManager:
    """The manager of this invocation's home; it never starts a scheduler by itself."""
    from smalltrain.service.manager import TrainingManager

    return TrainingManager.open(home(), executor=executor, autostart=False, **kwargs)


def spawn_worker(root: Path, args: list[str] | None = None) -> int | None:
    """Start ``smalltrain worker [args]`` detached from this terminal, unless a scheduler
    already runs for ``root``. Returns the new worker's pid, or None.

    Its output goes to ``root/worker.log``.
    """
    from smalltrain.service.scheduler import scheduler_running

    if scheduler_running(root) is not None:
        return None
    log = open(root / "worker.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "smalltrain.cli.main",
                "--home",
                str(root),
                "worker",
                *(args or []),
            ],  # fmt: skip
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=os.environ.copy(),
        )
    finally:
        log.close()
    return proc.pid


@contextlib.contextmanager
def _ctrl_c_cancels(manager: TrainingManager, job_id: str, out: Console) -> Iterator[list[int]]:
    """While inside, Ctrl-C cancels the job (graceful, then immediate, then leave)."""
    presses = [0]

    def cancel(mode: CancelMode) -> None:
        with contextlib.suppress(SmallTrainError):
            manager.cancel(job_id, mode, reason="cancelled with Ctrl-C")

    def handler(signum: int, frame: FrameType | None) -> None:
        presses[0] += 1
        if presses[0] >= 3:
            raise KeyboardInterrupt
        mode: CancelMode = "graceful" if presses[0] == 1 else "immediate"
        if mode == "graceful":
            out.print(
                styled(
                    ("Cancelling:", "yellow"),
                    " the job writes a checkpoint and stops (Ctrl-C again to stop it at once).",
                )  # fmt: skip
            )
        else:
            out.print(styled(("Stopping the job now.", "red"),
                             " (Ctrl-C again to leave without waiting)"))  # fmt: skip
        # The store is not touched from a signal handler: another thread sends the request.
        threading.Thread(target=cancel, args=(mode,), daemon=True).start()

    if threading.current_thread() is not threading.main_thread():
        yield presses
        return
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield presses
    finally:
        signal.signal(signal.SIGINT, previous)


def follow_job(
    manager: TrainingManager,
    job_id: str,
    *,
    after_id: int = 0,
    quiet: bool = False,
    out: Console | None = None,
) -> tuple[TrainingJob, bool, TrainingFinished | None]:
    """Show a job's progress until it ends; return the job, whether Ctrl-C cancelled it, and
    its last ``TrainingFinished`` event (None if it sent none)."""
    from smalltrain.cli.progress import EventProgress  # rich.progress and the event classes
    from smalltrain.engine.events import TrainingFinished

    finished: TrainingFinished | None = None
    with _ctrl_c_cancels(manager, job_id, out or console) as presses:
        events = manager.subscribe(job_id, after_id=after_id)
        if quiet:
            for event in events:
                if isinstance(event, TrainingFinished):
                    finished = event
        else:
            with EventProgress(out or console) as view:
                for event in events:
                    view(event)
            finished = view.finished
        job = manager.wait(job_id)
    return job, presses[0] > 0, finished


def exit_for(
    manager: TrainingManager, job: TrainingJob, *, interrupted: bool = False, quiet: bool = False
) -> None:
    """Say how a job ended and exit: 0 when COMPLETED, 130 when cancelled with Ctrl-C, else 1.

    A cancelled or failed job gets "Resume with: smalltrain resume ID" only when its task says
    it can resume; otherwise why not and what to do instead. ``quiet`` (JSON output) prints
    nothing on stdout.
    """
    if job.status is JobStatus.COMPLETED:
        return
    from smalltrain.service.resuming import check_resumable_job

    reason = job.status_reason or job.error or ""
    why_not = check_resumable_job(job, manager.home)
    advice = f"Resume with: smalltrain resume {job.id}" if why_not is None else why_not
    if job.status is JobStatus.CANCELLED:
        say(f"job {job.id} cancelled: {reason}. {advice}", json_mode=quiet)
        raise typer.Exit(130 if interrupted else 1)
    err_console.print(styled(("error:", "bold red"), f" job {job.id} {job.status}: {reason}"))
    if why_not is None:
        err_console.print(advice)
    raise typer.Exit(1)
