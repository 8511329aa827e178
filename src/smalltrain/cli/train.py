"""``smalltrain train`` and ``smalltrain resume``: queue a job and (by default) watch it.

Attached, the command runs the home's scheduler in this process for its own job (unless a
worker already runs it, then it follows the job from the database) and shows a progress bar;
Ctrl-C cancels with a checkpoint, a second Ctrl-C stops at once. ``--detach`` queues the job,
makes sure a background worker runs, and returns.
"""

from __future__ import annotations

from pathlib import Path

import typer

from smalltrain.cli.cluster import pick_executor, ray_option, worker_args
from smalltrain.cli.common import console, handle_errors
from smalltrain.cli.follow import exit_for, follow_job, open_manager, spawn_worker
from smalltrain.engine.config import parse_assignments
from smalltrain.errors import JobNotFound
from smalltrain.service.executors import EXECUTORS
from smalltrain.service.live import last_event_id
from smalltrain.service.manager import JobSpec, TrainingManager

__all__ = ["register", "resume_cmd", "train_cmd"]


def _run_attached(manager: TrainingManager, job_id: str, after_id: int = 0) -> None:
    """Run (or follow) the job to its end in this terminal, then exit with its outcome."""
    if manager.start_scheduler(stop_after={job_id}):
        console.print(f"running job {job_id} here (Ctrl-C cancels with a checkpoint)")
    else:
        holder = manager.scheduler_info() or {}
        console.print(
            f"following job {job_id}, run by the worker with pid {holder.get('pid', '?')} "
            "(Ctrl-C cancels it)"
        )
    job, interrupted = follow_job(manager, job_id, after_id=after_id)
    manager.stop_scheduler()
    if manager.jobs.count_jobs("QUEUED") and (pid := spawn_worker(manager.home)) is not None:
        console.print(f"other queued jobs continue in a background worker (pid {pid})")
    exit_for(job, interrupted=interrupted)


def _detached(manager: TrainingManager, job_id: str, args: list[str] | None = None) -> None:
    pid = spawn_worker(manager.home, args)
    where = f"a background worker (pid {pid})" if pid else "the running worker"
    console.print(f"job {job_id} queued; {where} will run it.", highlight=False)
    console.print(f"Follow it with: smalltrain jobs wait {job_id}", highlight=False)


@handle_errors
def train_cmd(
    dataset: str = typer.Argument(..., help="A registered dataset name, or a dataset path."),
    model_name: str | None = typer.Option(
        None, "--model-name", "-n", help="Register the model under this name."
    ),
    preset: str = typer.Option("auto", "--preset", help="auto | tiny | small | medium."),
    settings: list[str] = typer.Option(
        [], "--set", help="Override a config field, e.g. --set epochs=5 (repeatable)."
    ),
    detach: bool = typer.Option(
        False, "--detach", "-d", help="Queue the job for a background worker and return."
    ),
    run_dir: Path | None = typer.Option(
        None, "--run-dir", help="Where to write checkpoints (default: HOME/runs/<job id>)."
    ),
    executor: str = typer.Option(
        "process", "--executor", help=f"Where the job runs: {' | '.join(EXECUTORS)}."
    ),
    task: str | None = typer.Option(None, "--task", help="Force the task (default: detected)."),
    device: str | None = typer.Option(None, "--device", help="auto | cpu | cuda | cuda:N | mps."),
    ray_address: str | None = ray_option(),
) -> None:
    """Train a model on a dataset (queued; attached by default)."""
    if executor not in EXECUTORS:
        raise ValueError(f"--executor {executor!r}: choose one of {', '.join(EXECUTORS)}")
    if detach and executor not in ("process", "ray"):
        raise ValueError(
            "--detach runs the job in a background worker: use --executor process or ray"
        )
    manager = open_manager(pick_executor(executor, ray_address, connect=not detach))
    spec = JobSpec(
        dataset=dataset,
        task=task,
        model_name=model_name,
        preset=preset,
        overrides=parse_assignments(settings),
        device=device,
        run_dir=run_dir,
    )
    job_id = manager.start_training(spec)
    job = manager.get_job(job_id)
    console.print(
        f"job {job_id}: {job.task} model {job.model_name!r} on {job.dataset} "
        f"({job.artifacts.get('dataset_snapshot', '')})",
        highlight=False,
    )
    if detach:
        _detached(manager, job_id, worker_args(executor, ray_address))
    else:
        _run_attached(manager, job_id)


def _job_for(manager: TrainingManager, ref: str) -> str:
    """The id of the job whose run folder is ``ref``, or of the job ``ref`` itself."""
    path = Path(ref).expanduser()
    if path.is_dir():
        target = path.resolve()
        for job in manager.list_jobs(limit=None):
            if job.run_dir and Path(job.run_dir).resolve() in (target, target.parent):
                return job.id
        raise JobNotFound(f"No job has run folder {target}. List jobs with: smalltrain jobs list")
    return manager.get_job(ref).id


@handle_errors
def resume_cmd(
    ref: str = typer.Argument(..., help="A job id (or 4+ character prefix) or its run folder."),
    detach: bool = typer.Option(False, "--detach", "-d", help="Resume in a background worker."),
    ray_address: str | None = ray_option(),
) -> None:
    """Resume a cancelled, interrupted or failed job from its newest valid checkpoint."""
    manager = open_manager(pick_executor("process", ray_address, connect=not detach))
    job_id = _job_for(manager, ref)
    after = last_event_id(manager.jobs, job_id)
    manager.resume(job_id)
    console.print(f"job {job_id}: {manager.get_job(job_id).status_reason}", highlight=False)
    if detach:
        _detached(manager, job_id, worker_args("process", ray_address))
    else:
        _run_attached(manager, job_id, after_id=after)


def register(app: typer.Typer) -> None:
    """Add ``train`` and ``resume`` to the main app."""
    app.command("train")(train_cmd)
    app.command("resume")(resume_cmd)
