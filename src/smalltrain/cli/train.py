"""``smalltrain train`` and ``smalltrain resume``: queue a job and (by default) watch it.

Attached, the command runs the home's scheduler in this process for its own job (unless a
worker already runs it, then it follows the job from the database) and shows a progress bar;
Ctrl-C cancels with a checkpoint, a second Ctrl-C stops at once. It ends with a summary and
``next:`` commands. ``--detach`` queues the job, makes sure a background worker runs, and
returns. ``--json`` prints one JSON document at the end (the job and its summary).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from smalltrain.cli.cluster import EXECUTOR_NAMES, pick_executor, ray_option, worker_args
from smalltrain.cli.common import JSON_HELP, handle_errors, print_json, say
from smalltrain.cli.follow import exit_for, follow_job, open_manager, spawn_worker
from smalltrain.cli.summary import job_summary, print_summary
from smalltrain.engine.config import parse_assignments
from smalltrain.errors import ConfigError, JobNotFound

if TYPE_CHECKING:
    # The service layer loads when a command runs, not at start-up (`smalltrain --help`).
    from smalltrain.service.manager import JobSpec, TrainingManager
    from smalltrain.service.planning import ConfigFile

__all__ = ["follow_to_end", "register", "resume_cmd", "train_cmd"]

DETACH_HELP = "Queue the job for a background worker and return."


def follow_to_end(
    manager: TrainingManager, job_id: str, *, after_id: int = 0, as_json: bool = False
) -> None:
    """Run (or follow) the job to its end in this terminal, print its summary, and exit with
    its outcome (0 completed, 130 cancelled with Ctrl-C, 1 otherwise)."""
    from smalltrain.cli.common import console, err_console

    if manager.start_scheduler(stop_after={job_id}):
        say(f"running job {job_id} here (Ctrl-C cancels with a checkpoint)", json_mode=as_json)
    else:
        holder = manager.scheduler_info() or {}
        say(
            f"following job {job_id}, run by the worker with pid {holder.get('pid', '?')} "
            "(Ctrl-C cancels it)",
            json_mode=as_json,
        )
    out = err_console if as_json else console
    job, interrupted, finished = follow_job(
        manager, job_id, after_id=after_id, quiet=as_json, out=out
    )
    manager.stop_scheduler()
    if manager.jobs.count_jobs("QUEUED") and (pid := spawn_worker(manager.home)) is not None:
        say(f"other queued jobs continue in a background worker (pid {pid})", json_mode=as_json)
    summary = job_summary(manager, job, finished)
    if as_json:
        print_json({"job": job.to_dict(), "summary": summary})
    else:
        print_summary(summary)
    exit_for(manager, job, interrupted=interrupted, quiet=as_json)


def _detached(
    manager: TrainingManager, job_id: str, as_json: bool, args: list[str] | None = None
) -> None:
    pid = spawn_worker(manager.home, args)
    where = f"a background worker (pid {pid})" if pid else "the running worker"
    if as_json:
        print_json({"job": manager.get_job(job_id).to_dict(), "worker_pid": pid})
        return
    say(f"job {job_id} queued; {where} will run it.")
    say(f"Follow it with: smalltrain jobs wait {job_id}")


def _spec_from(
    manager: TrainingManager,
    dataset: str | None,
    config_file: Path | None,
    settings: list[str],
    **fields: Any,
) -> tuple[JobSpec, ConfigFile | None]:
    """The JobSpec of a train command: --config fields, then --set values on top, and the
    other flags (``fields``: task, model_name, preset, device, run_dir; None = not given);
    and the --config file read, if any."""
    from smalltrain.service.manager import JobSpec
    from smalltrain.service.planning import read_config_file

    overrides = parse_assignments(settings)
    loaded = None
    if config_file is not None:
        loaded = read_config_file(config_file)
        overrides = {**loaded.fields, **overrides}
        dataset = dataset or loaded.dataset_ref(manager.datasets)
        fields["task"] = fields.get("task") or loaded.task
        fields["preset"] = fields.get("preset") or loaded.preset
    if not dataset:
        raise typer.BadParameter("give the DATASET to train on (a registered name or a path)")
    given = {k: v for k, v in fields.items() if v is not None}
    return JobSpec(dataset=dataset, overrides=overrides, **given), loaded


@handle_errors
def train_cmd(
    dataset: str | None = typer.Argument(
        None,
        metavar="[DATASET]",
        help="A registered dataset name, or a dataset path (optional with a --config file that "
        "names one).",
    ),
    name: str | None = typer.Option(None, "--name", help="Register the model under this name."),
    name_old: str | None = typer.Option(None, "--model-name", "-n", hidden=True),
    preset: str | None = typer.Option(
        None,
        "--preset",
        help="auto (default) | tiny | small | medium (audio) | ultralytics | classic (detection).",
    ),
    settings: list[str] = typer.Option(
        [],
        "--set",
        metavar="KEY=VALUE",
        help="Set a config field, e.g. --set epochs=5 (repeatable; see smalltrain config show).",
    ),
    config_file: Path | None = typer.Option(
        None,
        "--config",
        metavar="FILE",
        help="A YAML file of config fields; a run's config.yaml repeats that run. --set wins.",
    ),
    detach: bool = typer.Option(False, "--detach", "-d", help=DETACH_HELP),
    run_dir: Path | None = typer.Option(
        None, "--run-dir", help="Where to write checkpoints (default: HOME/runs/<job id>)."
    ),
    executor: str = typer.Option(
        "process", "--executor", help=f"Where the job runs: {' | '.join(EXECUTOR_NAMES)}."
    ),
    task: str | None = typer.Option(None, "--task", help="Force the task (default: detected)."),
    device: str | None = typer.Option(None, "--device", help="auto | cpu | cuda | cuda:N | mps."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    ray_address: str | None = ray_option(),
) -> None:
    """Train a model on a dataset (queued; attached by default)."""
    from smalltrain.service.execution.executors import EXECUTORS

    if executor not in EXECUTORS:
        raise ValueError(f"--executor {executor!r}: choose one of {', '.join(EXECUTORS)}")
    if detach and executor not in ("process", "ray"):
        raise ValueError(
            "--detach runs the job in a background worker: use --executor process or ray"
        )
    manager = open_manager(pick_executor(executor, ray_address, connect=not detach))
    if not detach and manager.scheduler_info() is None:
        manager.warm_up()  # this process will run the job: load torch while it plans it
    spec, loaded = _spec_from(
        manager,
        dataset,
        config_file,
        settings,
        task=task,
        model_name=name or name_old,
        preset=preset,
        device=device,
        run_dir=run_dir,
    )
    try:
        job_id = manager.start_training(spec)
    except ConfigError as e:  # a value of the --config file: name the file and its line
        raise (loaded.located(e) if loaded is not None else e) from None
    job = manager.get_job(job_id)
    say(
        f"job {job_id}: {job.task} model {job.model_name!r} on {job.dataset} "
        f"({job.artifacts.get('dataset_snapshot', '')})",
        json_mode=as_json,
    )
    for note in job.artifacts.get("notes") or []:
        say(f"note: {note}", json_mode=as_json)
    if detach:
        _detached(manager, job_id, as_json, worker_args(executor, ray_address))
    else:
        follow_to_end(manager, job_id, as_json=as_json)


def job_for(manager: TrainingManager, ref: str) -> str:
    """The id of the job whose run folder is ``ref``, or of the job ``ref`` itself."""
    path = Path(ref).expanduser()
    if path.is_dir():
        target = path.resolve()
        for job in manager.list_jobs(limit=None):
            if job.run_dir and Path(job.run_dir).resolve() in (target, target.parent):
                return job.id
        raise JobNotFound(f"No job has run folder {target}. List jobs with: smalltrain jobs list")
    return manager.get_job(ref).id


def resume_job(ref: str, detach: bool, as_json: bool, ray_address: str | None = None) -> None:
    """What ``resume`` and ``jobs resume`` do."""
    from smalltrain.service.live import last_event_id

    manager = open_manager(pick_executor("process", ray_address, connect=not detach))
    if not detach and manager.scheduler_info() is None:
        manager.warm_up()  # this process will run the job
    job_id = job_for(manager, ref)
    after = last_event_id(manager.jobs, job_id)
    manager.resume(job_id)
    say(f"job {job_id}: {manager.get_job(job_id).status_reason}", json_mode=as_json)
    if detach:
        _detached(manager, job_id, as_json, worker_args("process", ray_address))
    else:
        follow_to_end(manager, job_id, after_id=after, as_json=as_json)


@handle_errors
def resume_cmd(
    ref: str = typer.Argument(
        ..., metavar="JOB", help="A job id (or a 4+ character prefix) or its run folder."
    ),
    detach: bool = typer.Option(False, "--detach", "-d", help=DETACH_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    ray_address: str | None = ray_option(),
) -> None:
    """Resume a cancelled, interrupted or failed job where its task saved it."""
    resume_job(ref, detach, as_json, ray_address)


def register(app: typer.Typer) -> None:
    """Add ``train`` and ``resume`` to the main app."""
    app.command("train")(train_cmd)
    app.command("resume")(resume_cmd)
