"""``smalltrain jobs``: list, show, cancel, resume, logs and wait for training jobs."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import typer
from rich.table import Table

from smalltrain.cli.common import console, handle_errors, print_json
from smalltrain.cli.follow import exit_for, follow_job, open_manager, spawn_worker
from smalltrain.engine.jobs import JobStatus, TrainingJob
from smalltrain.service.live import last_event_id

__all__ = ["app"]

app = typer.Typer(name="jobs", help="Training jobs: list, show, cancel, resume, logs, wait.")

_STYLE = {
    JobStatus.COMPLETED: "green",
    JobStatus.TRAINING: "cyan",
    JobStatus.FAILED: "red",
    JobStatus.INTERRUPTED: "yellow",
    JobStatus.CANCELLED: "yellow",
}


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def _progress(job: TrainingJob) -> str:
    epochs = f"epoch {job.epoch}/{job.total_epochs}" if job.total_epochs else ""
    return f"{job.progress * 100:.0f}% {epochs}".strip()


@app.command("list")
@handle_errors
def list_cmd(
    status: list[str] = typer.Option([], "--status", "-s", help="Only these statuses."),
    dataset: str | None = typer.Option(None, "--dataset", help="Only this dataset."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="At most this many jobs."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List jobs, newest first."""
    manager = open_manager()
    statuses = [JobStatus(s.upper()) for s in status] or None
    jobs = manager.list_jobs(status=statuses, dataset=dataset, limit=limit)
    if as_json:
        print_json([j.to_dict() for j in jobs])
        return
    if not jobs:
        console.print("no jobs yet; start one with: smalltrain train DATASET")
        return
    table = Table("id", "status", "task", "dataset", "model", "progress", "created", "reason")
    for j in jobs:
        style = _STYLE.get(j.status, "")
        table.add_row(
            j.short_id,
            f"[{style}]{j.status}[/]" if style else str(j.status),
            j.task,
            j.dataset or "-",
            j.model_name,
            _progress(j),
            _when(j.created_at),
            (j.status_reason or "")[:60],
        )
    console.print(table)


@app.command("show")
@handle_errors
def show_cmd(
    job_id: str = typer.Argument(..., help="Job id or a 4+ character prefix."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show one job: status, progress, metrics, attempts, error."""
    manager = open_manager()
    job = manager.get_job(job_id)
    attempts = manager.jobs.list_attempts(job.id)
    if as_json:
        print_json({**job.to_dict(), "attempt_list": [a.to_dict() for a in attempts]})
        return
    rows: list[tuple[str, Any]] = [
        ("id", job.id),
        ("status", job.status),
        ("reason", job.status_reason or "-"),
        ("task / dataset", f"{job.task} / {job.dataset} ({job.dataset_path})"),
        ("model name", job.model_name),
        ("progress", f"{_progress(job)}, step {job.step}/{job.total_steps or '?'}"),
        ("created / started / finished",
         f"{_when(job.created_at)} / {_when(job.started_at)} / {_when(job.finished_at)}"),
        ("sweep / placement", f"{job.sweep_id or '-'} / {json.dumps(job.placement)}"),
        ("run folder", job.run_dir or "-"),
        ("checkpoint", job.checkpoint_path or "-"),
        ("last metrics", json.dumps(job.last_metrics)),
        ("artifacts", json.dumps(job.artifacts)),
    ]  # fmt: skip
    for label, value in rows:
        console.print(f"[bold]{label:>30}[/]  {value}", highlight=False)
    for a in attempts:
        line = f"attempt {a.n}: {_when(a.started_at)} → {_when(a.finished_at)} {a.outcome or ''}"
        console.print(f"{'':>32}{line} {a.error or ''}", highlight=False)
    if job.error_traceback:
        console.print("[bold]traceback (summary)[/]")
        console.print(job.error_traceback, markup=False, highlight=False)


@app.command("cancel")
@handle_errors
def cancel_cmd(
    job_id: str = typer.Argument(..., help="Job id or a 4+ character prefix."),
    now: bool = typer.Option(False, "--now", help="Stop at once instead of after a checkpoint."),
) -> None:
    """Cancel a job: a queued one at once; a running one checkpoints and stops."""
    manager = open_manager()
    job = manager.cancel(job_id, "immediate" if now else "graceful")
    console.print(f"job {job.id}: {job.status} ({job.status_reason})", highlight=False)


@app.command("resume")
@handle_errors
def resume_cmd(
    job_id: str = typer.Argument(..., help="Job id or a 4+ character prefix."),
    attach: bool = typer.Option(False, "--attach", help="Watch it here until it ends."),
) -> None:
    """Queue a new attempt of a cancelled, interrupted or failed job from its checkpoint."""
    manager = open_manager()
    job = manager.get_job(job_id)
    after = last_event_id(manager.jobs, job.id)
    manager.resume(job.id)
    console.print(f"job {job.id}: {manager.get_job(job.id).status_reason}", highlight=False)
    pid = spawn_worker(manager.home)
    if pid is not None:
        console.print(f"started a background worker (pid {pid})")
    if attach:
        job, interrupted = follow_job(manager, job.id, after_id=after)
        exit_for(job, interrupted=interrupted)


def _describe(event: dict[str, Any]) -> str:
    kind = event.get("type")
    if kind == "status_change":
        return f"{event.get('from') or '-'} → {event.get('to')} {event.get('reason') or ''}"
    if kind in ("step", "epoch"):
        metrics = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in dict(event.get("metrics", {})).items())  # fmt: skip
        return (
            f"epoch {int(event.get('epoch', 0)) + 1} step {event.get('global_step', '')} {metrics}"
        )
    for key in ("message", "path", "status"):
        if key in event:
            return str(event[key])
    return json.dumps({k: v for k, v in event.items() if k not in ("type", "time")})


@app.command("logs")
@handle_errors
def logs_cmd(
    job_id: str = typer.Argument(..., help="Job id or a 4+ character prefix."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing until it ends."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """Print a job's stored events (status changes, epochs, warnings, checkpoints...)."""
    manager = open_manager()
    job = manager.get_job(job_id)
    if follow:
        rows = manager.follow(job.id)
    else:
        rows = iter(manager.jobs.events_after(job.id, 0, limit=1_000_000))
    for _, event in rows:
        if as_json:
            print(json.dumps(event))
            continue
        when = dt.datetime.fromtimestamp(float(event.get("time", 0))).strftime("%H:%M:%S")
        console.print(f"{when} {event.get('type', '?'):>17}  {_describe(event)}", highlight=False,
                      markup=False)  # fmt: skip


@app.command("wait")
@handle_errors
def wait_cmd(
    job_id: str = typer.Argument(..., help="Job id or a 4+ character prefix."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Follow a job until it ends (exit 0 when COMPLETED); Ctrl-C cancels it."""
    manager = open_manager()
    job = manager.get_job(job_id)
    if not job.is_terminal and manager.scheduler_info() is None:
        console.print(
            "[yellow]no worker runs this home; start one with: smalltrain worker --detach[/]"
        )
    job, interrupted = follow_job(manager, job.id, quiet=quiet)
    exit_for(job, interrupted=interrupted)
