"""``smalltrain jobs``: list, show, cancel, resume, logs and wait for training jobs."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import typer

from smalltrain.cli.common import JSON_HELP, console, handle_errors, print_json, say
from smalltrain.cli.follow import exit_for, follow_job, open_manager
from smalltrain.cli.output import fmt_number, local_time, print_fields, print_table, readable
from smalltrain.cli.summary import job_summary, print_summary
from smalltrain.cli.train import DETACH_HELP, resume_job
from smalltrain.engine.jobs import JobStatus, TrainingJob

__all__ = ["app"]

app = typer.Typer(name="jobs", help="Training jobs: list, show, cancel, resume, logs, wait.")

_JOB_HELP = "Job id or a 4+ character prefix."


def _progress(job: TrainingJob) -> str:
    epochs = f"epoch {job.epoch}/{job.total_epochs}" if job.total_epochs else ""
    return f"{job.progress * 100:.0f}% {epochs}".strip()


@app.command("list")
@handle_errors
def list_cmd(
    status: list[str] = typer.Option(
        [],
        "--status",
        "-s",
        help="Only these statuses (repeatable): "
        + ", ".join(s.value.lower() for s in JobStatus)
        + ".",
    ),
    dataset: str | None = typer.Option(None, "--dataset", help="Only this dataset."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="At most this many jobs."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """List jobs, newest first (full ids: paste them into the other commands)."""
    known = {s.value: s for s in JobStatus}
    wrong = [s for s in status if s.strip().upper() not in known]
    if wrong:
        raise typer.BadParameter(
            f"{wrong[0]!r} is not a job status; give one of: "
            + ", ".join(v.lower() for v in known),
            param_hint="'--status'",
        )
    manager = open_manager()
    statuses = [known[s.strip().upper()] for s in status] or None
    jobs = manager.list_jobs(status=statuses, dataset=dataset, limit=limit)
    if as_json:
        print_json([j.to_dict() for j in jobs])
        return
    if not jobs and (statuses or dataset):
        shown = [f"status {' or '.join(s.value.lower() for s in statuses)}"] if statuses else []
        shown += [f"dataset {dataset!r}"] if dataset else []
        console.print(f"no job has {' and '.join(shown)}; all jobs: smalltrain jobs list")
        return
    if not jobs:
        console.print("no jobs yet; start one with: smalltrain train DATASET")
        return
    rows = [[j.id, j.status.value, j.task, j.dataset or "-", j.model_name, _progress(j),
             local_time(j.created_at), j.status_reason or ""] for j in jobs]  # fmt: skip
    headers = ["id", "status", "task", "dataset", "model", "progress", "created", "reason"]
    print_table(headers, rows, wrap=["reason"])


def _metrics_text(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{k} {fmt_number(v)}" if isinstance(v, (int, float)) else f"{k} {v}"
                     for k, v in metrics.items()) or "-"  # fmt: skip


def _show_rows(job: TrainingJob, home: Path) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [
        ("id", job.id),
        ("status", job.status.value),
        ("reason", job.status_reason or "-"),
        ("task", job.task),
        ("dataset", f"{job.dataset} ({job.dataset_path})"),
        ("model", job.model_name),
        ("progress", f"{_progress(job)}, step {job.step}/{job.total_steps or '?'}"),
        ("created", local_time(job.created_at)),
        ("started", local_time(job.started_at)),
        ("finished", local_time(job.finished_at)),
        ("sweep", job.sweep_id or "-"),
        ("placement", json.dumps(job.placement) if job.placement else "-"),
        ("run folder", job.run_dir or "-"),
        ("checkpoint", job.checkpoint_path or "-"),
    ]
    if job.status in (JobStatus.CANCELLED, JobStatus.FAILED, JobStatus.INTERRUPTED):
        from smalltrain.service.resuming import check_resumable_job

        why_not = check_resumable_job(job, home)
        rows.append(("resume", f"smalltrain resume {job.id}" if why_not is None else why_not))
    rows.append(("last metrics", _metrics_text(job.last_metrics)))
    for key, value in job.artifacts.items():
        rows.append((key.replace("_", " "), readable(value)))
    return rows


@app.command("show")
@handle_errors
def show_cmd(
    job_id: str = typer.Argument(..., metavar="JOB", help=_JOB_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show one job: status, progress, metrics, files, attempts, error."""
    manager = open_manager()
    job = manager.get_job(job_id)
    attempts = manager.jobs.history.list_attempts(job.id)
    if as_json:
        print_json({**job.to_dict(), "attempt_list": [a.to_dict() for a in attempts]})
        return
    rows = _show_rows(job, manager.home)
    for a in attempts:
        outcome = f" {a.outcome}" if a.outcome else ""
        error = f": {a.error}" if a.error else ""
        resumed = f" from {Path(a.resume_from).name}" if a.resume_from else ""
        span = f"{local_time(a.started_at)} → {local_time(a.finished_at)}"
        rows.append((f"attempt {a.n}", f"{span}{outcome}{resumed}{error}"))
    print_fields(rows)
    if job.error_traceback:
        console.print("traceback (summary)", style="bold")
        console.print(job.error_traceback)


@app.command("cancel")
@handle_errors
def cancel_cmd(
    job_id: str = typer.Argument(..., metavar="JOB", help=_JOB_HELP),
    now: bool = typer.Option(
        False,
        "--now",
        help="Stop within about 1 s instead of after the current step (detection still saves "
        "last.pt).",
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Cancel a job: a queued one at once; a running one checkpoints and stops."""
    manager = open_manager()
    job = manager.cancel(job_id, "immediate" if now else "graceful")
    if as_json:
        print_json(job.to_dict())
        return
    console.print(f"job {job.id}: {job.status} ({job.status_reason})")


@app.command("resume")
@handle_errors
def resume_cmd(
    job_id: str = typer.Argument(..., metavar="JOB", help=f"{_JOB_HELP} Or its run folder."),
    detach: bool = typer.Option(False, "--detach", "-d", help=DETACH_HELP),
    attach_old: bool = typer.Option(False, "--attach", hidden=True),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Resume a cancelled, interrupted or failed job (the same as ``smalltrain resume``)."""
    resume_job(job_id, detach and not attach_old, as_json)


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


def _tool_logs(job: TrainingJob) -> list[Path]:
    """Logs the job's tools wrote in its run folder (Ultralytics' own console output)."""
    named = [Path(str(v)) for k, v in job.artifacts.items() if str(k).endswith("_log")]
    if job.run_dir:
        named.append(Path(job.run_dir) / "ultralytics.log")
    return sorted({p for p in named if p.is_file()})


@app.command("logs")
@handle_errors
def logs_cmd(
    job_id: str = typer.Argument(..., metavar="JOB", help=_JOB_HELP),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing until it ends."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line (JSON Lines)."),
) -> None:
    """Print a job's stored events (status changes, epochs, warnings, checkpoints...)."""
    manager = open_manager()
    job = manager.get_job(job_id)
    if follow:
        rows = manager.follow(job.id)
    else:
        rows = iter(manager.jobs.history.events_after(job.id, 0, limit=1_000_000))
    for _, event in rows:
        if as_json:
            print(json.dumps(event))
            continue
        when = dt.datetime.fromtimestamp(float(event.get("time", 0))).strftime("%H:%M:%S")
        console.print(f"{when} {event.get('type', '?'):>17}  {_describe(event)}")
    for log in _tool_logs(manager.get_job(job.id)):
        say(f"the training tool's own log: {log}", json_mode=as_json)


@app.command("wait")
@handle_errors
def wait_cmd(
    job_id: str = typer.Argument(..., metavar="JOB", help=_JOB_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Follow a job until it ends (exit 0 when COMPLETED); Ctrl-C cancels it."""
    from smalltrain.cli.common import err_console

    manager = open_manager()
    job = manager.get_job(job_id)
    if not job.is_terminal and manager.scheduler_info() is None:
        say("no worker runs this home; start one with: smalltrain worker --detach",
            json_mode=as_json)  # fmt: skip
    out = err_console if as_json else console
    job, interrupted, finished = follow_job(manager, job.id, quiet=quiet or as_json, out=out)
    summary = job_summary(manager, job, finished)
    if as_json:
        print_json({"job": job.to_dict(), "summary": summary})
    elif not quiet:
        print_summary(summary)
    elif job.status is JobStatus.COMPLETED:
        console.print(f"job {job.id} completed: {job.status_reason or ''}")
    exit_for(manager, job, interrupted=interrupted, quiet=as_json)
