"""Whether and where a job resumes: the task answers (``Task.resume_point``), this module asks.

The service never looks inside a run folder itself: the audio task keeps the engine's
checkpoints under ``<run>/checkpoints/``, the detection task Ultralytics' ``last.pt``, and a
plugin task whatever it likes. When a job cannot resume, the message says why and gives a
command that works instead (``smalltrain train --config <run>/config.yaml`` repeats the job
with every setting it had, ``--set`` values included).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from smalltrain import paths, tasks
from smalltrain.engine.context import ResumePoint, resume_point_of
from smalltrain.engine.jobs import RESUMABLE, JobStatus, TrainingJob
from smalltrain.errors import NotResumable
from smalltrain.service.execution.attempt import reason_of

__all__ = [
    "CONFIG_FAILURES",
    "RUN_CONFIG",
    "failed_on_config",
    "refuse_config_failure",
    "check_resumable_job",
    "current_resume_point",
    "resume_point_for",
    "run_dir_of",
    "start_again",
]

#: The file in a run folder that holds the job's full config (written when it is queued).
RUN_CONFIG = "config.yaml"


#: Errors a job fails with when its config (not its run) is wrong: resuming repeats them.
CONFIG_FAILURES = ("ConfigError:", "WeightsNotFound:")


def failed_on_config(job: TrainingJob) -> bool:
    """Whether ``job`` FAILED on its config (resuming would fail the same way: edit and retry)."""
    return job.status is JobStatus.FAILED and (job.error or "").startswith(CONFIG_FAILURES)


def refuse_config_failure(job: TrainingJob, home: Path) -> None:
    """Refuse to resume a FAILED job whose error came from its config: the same config would
    fail the same way. The way on is to edit the config and start a new job.

    Raises:
        NotResumable: naming the error and the command that edits and retries.
    """
    error = job.error or ""
    if not failed_on_config(job):
        return
    config = run_dir_of(job, home) / RUN_CONFIG
    raise NotResumable(
        f"Cannot resume job {job.id}: it failed on its config "
        f"({textwrap.shorten(reason_of(error) or '', 200, placeholder=' ...')}); resuming would "
        f"fail the same way. Edit and retry: fix the field and start it again with: "
        f"smalltrain train --config {config} --set FIELD=VALUE (in the web UI: change it in "
        f"the Train tab and start again)"
    )


def run_dir_of(job: TrainingJob, home: Path) -> Path:
    """The job's run folder."""
    return Path(job.run_dir or paths.run_dir(home, job.id))


def start_again(job: TrainingJob, home: Path) -> str:
    """A command that starts the job again with the same settings."""
    config = run_dir_of(job, home) / RUN_CONFIG
    if config.is_file():
        return f"smalltrain train --config {config}"
    return f"smalltrain train {job.dataset or job.dataset_path}"


def _from_finished(job: TrainingJob, home: Path) -> str:
    """What to do instead of resuming a completed job."""
    weights = job.artifacts.get("weights")
    command = start_again(job, home)
    if weights and "base_model" in job.config:
        return (
            f"train a new model from its weights with: {command} --set base_model={weights} "
            "--set epochs=N"
        )
    return f"train a new model the same way with: {command}"


def resume_point_for(job: TrainingJob, home: Path) -> ResumePoint:
    """Where ``job`` resumes from, asked of its task.

    Raises:
        NotResumable: the job is running or completed, or its task says the run cannot resume;
            the message names the job, says why and what to do instead.
    """
    if job.status is JobStatus.COMPLETED:
        model = f" (model {job.model_name!r})" if job.artifacts.get("model") else ""
        raise NotResumable(
            f"Cannot resume job {job.id}: it already completed{model}; {_from_finished(job, home)}"
        )
    if job.status not in RESUMABLE:
        raise NotResumable(
            f"Cannot resume job {job.id}: it is {job.status} and has not ended yet; cancel it "
            f"first with: smalltrain jobs cancel {job.id}"
        )
    try:
        task = tasks.get_task(job.task)
    except KeyError as exc:
        raise NotResumable(f"Cannot resume job {job.id}: {exc.args[0]}") from None
    try:
        return resume_point_of(task, run_dir_of(job, home))
    except NotResumable as exc:
        raise NotResumable(
            f"Cannot resume job {job.id}: {str(exc).rstrip('.')}. Start it again with: "
            f"{start_again(job, home)}"
        ) from None


def check_resumable_job(job: TrainingJob, home: Path) -> str | None:
    """None if ``job`` can be resumed now, else why not (for hints such as "Resume with"): the
    same refusals as ``TrainingManager.resume``, a failure on the job's config first (its
    summary offered "start it again" where the way on is to edit and retry)."""
    try:
        refuse_config_failure(job, home)
        resume_point_for(job, home)
    except NotResumable as exc:
        return str(exc)
    return None


def current_resume_point(job: TrainingJob, run_dir: Path) -> Path | None:
    """Where a queued resume starts now (the file it was queued with may have been replaced),
    or None to start from scratch when the task no longer finds anything."""
    try:
        return resume_point_of(tasks.get_task(job.task), run_dir).path
    except (KeyError, NotResumable):
        return None
