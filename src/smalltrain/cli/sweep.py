"""``smalltrain sweep``: several trials of one dataset, weak ones stopped early, the best kept.

    smalltrain sweep DATASET --trials 8 --vary seed --vary lr0=0.0005,0.001 [-j 2] [--ray ADDR]
    smalltrain sweep show ID | list | cancel ID | finish ID

``sweep DATASET`` is short for ``sweep run DATASET``. Attached (the default), this process runs
the home's scheduler for the sweep's trials (``-j`` at once, each with its share of the cores,
or on Ray with ``--ray``), prints each trial's epochs as they come, and ends with the table of
``sweep show``. Ctrl-C cancels the sweep (running trials checkpoint); the best trial that
completed is still registered.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import TYPE_CHECKING, Any

import typer
from rich.text import Text
from typer.core import TyperGroup

from smalltrain.cli.cluster import pick_executor, ray_option, worker_args
from smalltrain.cli.common import console, handle_errors, home, print_json
from smalltrain.cli.follow import open_manager, spawn_worker
from smalltrain.cli.output import local_time, print_table
from smalltrain.cli.sweep_view import describe_event, render_summary, setting_text
from smalltrain.engine.config import parse_assignments
from smalltrain.errors import SmallTrainError

if TYPE_CHECKING:
    from smalltrain.service.manager import TrainingManager

__all__ = ["app"]


class _RunByDefault(TyperGroup):
    """``sweep DATASET ...`` means ``sweep run DATASET ...``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    name="sweep",
    cls=_RunByDefault,
    no_args_is_help=True,
    help="Sweeps: `sweep DATASET --trials 8 --vary seed ...`, then show, list, cancel, finish.",
)


@app.command("run")
@handle_errors
def run_cmd(
    dataset: str = typer.Argument(..., help="A registered dataset name, or a dataset path."),
    trials: int | None = typer.Option(
        None, "--trials", "-t", min=1, help="How many trials (default: one per setting)."
    ),
    vary: list[str] = typer.Option(
        [], "--vary", help="FIELD=v1,v2,... to cycle through, or `seed` for a seed per trial."
    ),
    settings: list[str] = typer.Option([], "--set", help="A config field for every trial."),
    preset: str = typer.Option("auto", "--preset", help="auto | tiny | small | medium."),
    task: str | None = typer.Option(None, "--task", help="Force the task (default: detected)."),
    device: str | None = typer.Option(None, "--device", help="auto | cpu | cuda | cuda:N | mps."),
    metric: str | None = typer.Option(None, "--metric", help="Validation metric to judge by."),
    mode: str | None = typer.Option(None, "--mode", help="min | max (default: the task's)."),
    early_stop: bool = typer.Option(
        True, "--early-stop/--no-early-stop", help="Stop weak trials early (ASHA)."
    ),
    grace_epochs: int = typer.Option(1, "--grace-epochs", min=1, help="Epochs before a stop."),
    reduction_factor: int = typer.Option(2, "--reduction-factor", min=2, help="ASHA's rf."),
    max_concurrent: int = typer.Option(2, "--max-concurrent", "-j", min=1, help="Trials at once."),
    executor: str = typer.Option("process", "--executor", help="process | ray."),
    ray_address: str | None = ray_option(),
    model_name: str | None = typer.Option(
        None, "--name", help="Register the best trial under this name."
    ),
    name_old: str | None = typer.Option(None, "--model-name", hidden=True),
    activate: bool = typer.Option(False, "--activate", help="Make the best the active model."),
    prune: bool = typer.Option(False, "--prune", help="Delete the other trials' run folders."),
    detach: bool = typer.Option(False, "--detach", "-d", help="Run in a background worker."),
    as_json: bool = typer.Option(False, "--json", help="Print the final summary as JSON."),
) -> None:
    """Run a sweep of trials on a dataset; the best trial is registered."""
    from smalltrain.service.execution.executors import EXECUTORS
    from smalltrain.service.sweeps.spec import SweepSpec, parse_vary

    if executor not in EXECUTORS:
        raise ValueError(f"--executor {executor!r}: choose one of {', '.join(EXECUTORS)}")
    spec = SweepSpec(
        dataset=dataset,
        trials=trials,
        vary=parse_vary(vary),
        task=task,
        preset=preset,
        overrides=parse_assignments(settings),
        device=device,
        metric=metric,
        mode=mode,
        early_stop=early_stop,
        grace_epochs=grace_epochs,
        reduction_factor=reduction_factor,
        model_name=model_name or name_old,
        activate=activate,
        prune=prune,
    )
    chosen = pick_executor(executor, ray_address, connect=not detach)
    manager = open_manager(chosen, max_concurrent=max_concurrent)
    sweep_id = manager.start_sweep(spec)
    summary = manager.get_sweep(sweep_id)
    head = f"sweep {sweep_id}: {len(summary.trials)} trials of {summary.sweep.task}"
    console.print(f"{head} on {summary.sweep.dataset}, judged by {summary.sweep.metric}",
                  highlight=False)  # fmt: skip
    for row in summary.trials:
        console.print(f"  trial {row.n} [{row.job.short_id}] {setting_text(row.setting)}",
                      highlight=False, markup=False)  # fmt: skip
    if detach:
        pid = spawn_worker(home(), worker_args(executor, ray_address, max_concurrent))
        where = f"a background worker (pid {pid})" if pid else "the running worker"
        console.print(f"queued; {where} runs the trials. Follow: smalltrain sweep show {sweep_id}")
        return
    _run_attached(manager, sweep_id, [r.job.id for r in summary.trials])
    final = manager.wait_sweep(sweep_id)
    if as_json:
        print_json(final.to_dict())
    else:
        render_summary(console, final)
    if final.sweep.status != "COMPLETED":
        raise typer.Exit(1)


def _run_attached(manager: TrainingManager, sweep_id: str, trial_ids: list[str]) -> None:
    """Run the trials here (or follow the worker that runs them) and print their progress."""
    if manager.start_scheduler(stop_after=set(trial_ids)):
        console.print(f"running {len(trial_ids)} trials here, {manager.max_concurrent} at once "
                      "(Ctrl-C cancels the sweep)")  # fmt: skip
    else:
        console.print("following the trials, run by this home's worker (Ctrl-C cancels them)")
    with _ctrl_c_cancels(manager, sweep_id):
        _print_progress(manager, sweep_id, trial_ids)
    manager.stop_scheduler()


def _print_progress(manager: TrainingManager, sweep_id: str, trial_ids: list[str]) -> None:
    """Print each trial's epochs and status changes until the sweep has finished."""
    metric = manager.get_sweep(sweep_id).sweep.metric
    seen = dict.fromkeys(trial_ids, 0)
    number = {job_id: n for n, job_id in enumerate(trial_ids, start=1)}
    while True:
        for job_id in trial_ids:
            for event_id, data in manager.jobs.history.events_after(job_id, seen[job_id]):
                seen[job_id] = event_id
                line = describe_event(number[job_id], job_id, data, metric)
                if line is not None:
                    console.print(line, highlight=False, markup=False)
        if manager.get_sweep(sweep_id).finished:
            return
        manager.hub.wait_change(0.5)


@contextlib.contextmanager
def _ctrl_c_cancels(manager: TrainingManager, sweep_id: str) -> Iterator[None]:
    """While inside, the first Ctrl-C cancels the sweep's trials; the second leaves."""
    presses = [0]

    def cancel() -> None:
        with contextlib.suppress(SmallTrainError):
            manager.cancel_sweep(sweep_id, "sweep cancelled with Ctrl-C")

    def handler(signum: int, frame: FrameType | None) -> None:
        presses[0] += 1
        if presses[0] > 1:
            raise KeyboardInterrupt
        console.print(Text("Cancelling the sweep: running trials checkpoint and stop.", "yellow"))
        threading.Thread(target=cancel, daemon=True).start()

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@app.command("show")
@handle_errors
def show_cmd(
    sweep_id: str = typer.Argument(..., metavar="SWEEP", help="Sweep id or a 4+ character prefix."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a sweep's trials side by side with their curves."""
    summary = open_manager().get_sweep(sweep_id)
    if as_json:
        print_json(summary.to_dict())
    else:
        render_summary(console, summary)


@app.command("list")
@handle_errors
def list_cmd(
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="At most this many sweeps."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List sweeps, newest first."""
    sweeps = open_manager().sweeps.newest(limit)
    if as_json:
        print_json([s.to_dict() for s in sweeps])
        return
    if not sweeps:
        console.print(
            "no sweeps yet; start one with: smalltrain sweep DATASET --trials 4 --vary seed"
        )
        return
    rows = [[s.id, s.status, s.task, s.dataset or "-", str(s.spec.get("trials", "?")),
             s.metric, local_time(s.created_at), s.best_model or "-"] for s in sweeps]  # fmt: skip
    headers = ["id", "status", "task", "dataset", "trials", "metric", "created", "best"]
    print_table(headers, rows, right=["trials"])


@app.command("cancel")
@handle_errors
def cancel_cmd(
    sweep_id: str = typer.Argument(..., metavar="SWEEP", help="Sweep id or a 4+ character prefix."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Cancel a sweep's queued and running trials (the best completed one is still kept)."""
    count = open_manager().cancel_sweep(sweep_id)
    if as_json:
        print_json({"sweep": sweep_id, "cancelled_trials": count})
    else:
        console.print(f"cancelled {count} trial(s) of sweep {sweep_id}")


@app.command("finish")
@handle_errors
def finish_cmd(
    sweep_id: str = typer.Argument(..., metavar="SWEEP", help="Sweep id or a 4+ character prefix."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Close a sweep now: register the best of the trials that completed."""
    summary = open_manager().sweeps.finish(sweep_id)
    if as_json:
        print_json(summary.to_dict())
    else:
        render_summary(console, summary)
