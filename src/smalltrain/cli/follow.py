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
from typing import Any

import typer

from smalltrain.cli.common import console, err_console, home
from smalltrain.cli.progress import EventProgress
from smalltrain.engine.context import CancelMode
from smalltrain.engine.jobs import JobStatus, TrainingJob
from smalltrain.errors import SmallTrainError
from smalltrain.service.executors import Executor
from smalltrain.service.manager import TrainingManager
from smalltrain.service.scheduler import scheduler_running

__all__ = ["exit_for", "follow_job", "open_manager", "spawn_worker"]


def open_manager(executor: str | Executor = "process", **kwargs: Any) -> TrainingManager:
    """The manager of this invocation's home; it never starts a scheduler by itself."""
    return TrainingManager.open(home(), executor=executor, autostart=False, **kwargs)


def spawn_worker(root: Path, args: list[str] | None = None) -> int | None:
    """Start ``smalltrain worker [args]`` detached from this terminal, unless a scheduler
    already runs for ``root``. Returns the new worker's pid, or None.

    Its output goes to ``root/worker.log``.
    """
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
def _ctrl_c_cancels(manager: TrainingManager, job_id: str) -> Iterator[list[int]]:
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
            console.print(
                "[yellow]Cancelling: the job writes a checkpoint and stops "
                "(Ctrl-C again to stop it at once).[/]"
            )
        else:
            console.print("[red]Stopping the job now.[/] (Ctrl-C again to leave without waiting)")
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
    manager: TrainingManager, job_id: str, *, after_id: int = 0, quiet: bool = False
) -> tuple[TrainingJob, bool]:
    """Show a job's progress until it ends; return the job and whether Ctrl-C cancelled it."""
    with _ctrl_c_cancels(manager, job_id) as presses:
        events = manager.subscribe(job_id, after_id=after_id)
        if quiet:
            for _ in events:
                pass
        else:
            with EventProgress(console) as view:
                for event in events:
                    view(event)
        job = manager.wait(job_id)
    return job, presses[0] > 0


def exit_for(job: TrainingJob, *, interrupted: bool = False) -> None:
    """Print how a job ended and exit: 0 when COMPLETED, 130 when cancelled with Ctrl-C,
    else 1 with the reason on stderr."""
    if job.status is JobStatus.COMPLETED:
        console.print(f"[green]job {job.id} completed[/]: {job.status_reason or ''}")
        return
    reason = job.status_reason or job.error or ""
    if job.status is JobStatus.CANCELLED:
        console.print(
            f"job {job.id} cancelled: {reason}. Resume with: smalltrain resume {job.id}",
            highlight=False,
        )
        raise typer.Exit(130 if interrupted else 1)
    err_console.print(f"[bold red]error:[/] job {job.id} {job.status}: {reason}", highlight=False)
    raise typer.Exit(1)
