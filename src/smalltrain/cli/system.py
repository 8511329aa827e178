"""``smalltrain resources`` and ``smalltrain worker``."""

from __future__ import annotations

import os
import signal
import threading
import time
from types import FrameType

import typer

from smalltrain.cli.cluster import pick_executor, ray_option, worker_args
from smalltrain.cli.common import JSON_HELP, console, handle_errors, home, print_json, styled
from smalltrain.cli.follow import open_manager, spawn_worker

__all__ = ["register", "resources_cmd", "worker_cmd"]


@handle_errors
def resources_cmd(
    interval: float = typer.Option(
        0.5, "--interval", min=0.05, help="Seconds over which CPU use is measured."
    ),
    gpu_threshold: float = typer.Option(0.9, help="GPU memory fraction counted as constrained."),
    ram_threshold: float = typer.Option(0.85, help="RAM fraction counted as constrained."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show CPU, RAM and GPU use, and whether new jobs would wait."""
    from smalltrain.engine.resources import ResourceMonitor  # psutil: only this command

    monitor = ResourceMonitor(gpu_threshold, ram_threshold)  # starts the CPU counter
    # CPU use is a rate: a reading right after the counter starts says 0% (or 100%) whatever
    # the machine does. Measure over a real interval.
    time.sleep(interval)
    status = monitor.check()
    if as_json:
        print_json({**status.to_dict(), "cpu_interval_s": interval})
        return
    console.print(
        f"CPU {status.cpu_percent:.0f}% (over {interval:g} s)   RAM {status.ram_percent:.0f}%"
    )
    if not status.gpus:
        console.print(f"GPU: {status.note}")
    for g in status.gpus:
        util = "" if g.utilization_percent is None else f", {g.utilization_percent:.0f}% busy"
        console.print(
            f"GPU {g.index} {g.name} ({g.backend}): {g.memory_percent:.0f}% memory "
            f"({g.memory_used_bytes / 2**30:.1f} / {g.memory_total_bytes / 2**30:.1f} GiB){util}"
        )
    if status.constrained:
        console.print(
            styled(("constrained:", "yellow"), f" {'; '.join(status.reasons)}; queued jobs wait")
        )
    else:
        console.print(styled(("not constrained:", "green"), " queued jobs may start"))


@handle_errors
def worker_cmd(
    detach: bool = typer.Option(False, "--detach", "-d", help="Run in the background."),
    serve: bool = typer.Option(
        False, "--serve", help="Keep running when the queue is empty (default: exit when idle)."
    ),
    max_concurrent: int = typer.Option(1, "--max-concurrent", "-j", min=1, help="Jobs at once."),
    ray_address: str | None = ray_option(),
) -> None:
    """Run the queued jobs of this home (one worker per home), here or on a Ray cluster."""
    root = home()
    executor = pick_executor("process", ray_address, connect=not detach)
    if detach:
        pid = spawn_worker(root, worker_args("process", ray_address, max_concurrent))
        if pid is None:
            console.print(f"a worker already runs the jobs of {root}")
        else:
            console.print(f"worker started in the background (pid {pid}); log: {root}/worker.log")
        return
    manager = open_manager(executor, max_concurrent=max_concurrent)
    stops = [0]

    def stop(signum: int, frame: FrameType | None) -> None:
        stops[0] += 1
        if stops[0] > 1:
            raise KeyboardInterrupt
        console.print("stopping: running jobs write a checkpoint and end CANCELLED")
        manager.stop_scheduler()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    where = f" on the Ray cluster at {ray_address}" if ray_address else ""
    console.print(f"worker (pid {os.getpid()}): running the jobs of {root}{where}")
    manager.run_scheduler(until_idle=not serve)
    console.print("worker: the queue is empty; exiting")


def register(app: typer.Typer) -> None:
    """Add ``resources`` and ``worker`` to the main app."""
    app.command("resources")(resources_cmd)
    app.command("worker")(worker_cmd)
