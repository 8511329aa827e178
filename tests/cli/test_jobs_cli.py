"""The job CLI end to end: datasets, train (attached and detached), jobs, models, worker.

Commands run through Typer's CliRunner in this process, except where a real terminal process is
the point (the detached worker, Ctrl-C). The task is ``smalltrain.tasks.toy``, a minimal
real task used to test the engine in isolation; the audio variant runs the real audio task on
tiny synthetic sounds. No mocks, no fixed sleeps: tests wait on job state and processes.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from smalltrain.engine.jobs import JobStatus
from smalltrain.service.manager import TrainingManager
from tests.support import audio as audiojob
from tests.support.cli import cli, cli_json

pytestmark = pytest.mark.usefixtures("toy_task")


def _wait_for_event(home: Path, job_id: str, kind: str) -> None:
    with TrainingManager.open(home, autostart=False) as manager:
        for _, event in manager.follow(job_id, timeout=120):
            if event["type"] == kind:
                return
    raise AssertionError(f"job {job_id} ended without a {kind!r} event")


def test_datasets_train_detached_cancel_resume_models(home: Path, data: Path) -> None:
    cli("datasets", "add", "toyset", str(data), "--kind", "toy")
    assert [d["name"] for d in cli_json("datasets", "list")] == ["toyset"]
    assert cli_json("datasets", "show", "toyset")["kind"] == "toy"

    out = cli("train", "toyset", "--task", "toy", "--set", "epochs=30", "--set", "step_s=0.05",
              "--model-name", "first", "--detach").stdout  # fmt: skip
    assert "queued" in out
    (job,) = cli_json("jobs", "list")
    job_id = job["id"]
    _wait_for_event(home, job_id, "checkpoint")  # a detached worker is training it

    assert "CANCELLING" in cli("jobs", "cancel", job_id[:8]).stdout
    waited = cli("jobs", "wait", job_id, "--quiet", code=1)
    assert "cancelled" in waited.stdout
    assert cli_json("jobs", "show", job_id)["status"] == "CANCELLED"

    cli("jobs", "resume", job_id)
    cli("jobs", "wait", job_id, "--quiet")
    shown = cli_json("jobs", "show", job_id)
    assert shown["status"] == "COMPLETED"
    assert [a["outcome"] for a in shown["attempt_list"]] == ["cancelled", "completed"]
    logs = cli("jobs", "logs", job_id).stdout
    assert "CANCELLED → QUEUED" in logs

    (model,) = cli_json("models", "list")
    assert model["name"] == "first"
    assert model["active"]
    assert model["job_id"] == job_id
    cli("train", "toyset", "--task", "toy", "--model-name", "second", "--executor", "inline")
    assert not cli_json("models", "show", "second")["active"]  # "first" stays active
    cli("models", "activate", "second")
    assert cli_json("models", "show", "second")["active"]
    assert not cli_json("models", "show", "first", "--dataset", "toyset")["active"]
    cli("models", "delete", "second", "--yes")
    assert [m["name"] for m in cli_json("models", "list", "toyset")] == ["first"]


def test_errors_are_one_line_on_stderr(home: Path, data: Path) -> None:
    result = cli("jobs", "show", "nope", code=1)
    assert result.stderr.strip().startswith("error: No job 'nope'")
    assert len(result.stderr.strip().splitlines()) == 1
    result = cli("train", "missing-dataset", "--detach", code=1)
    assert "neither a registered dataset nor an existing path" in result.stderr
    result = cli("train", str(data), "--task", "toy", "--set", "epochs", code=1)
    assert "key=value" in result.stderr
    assert cli_json("jobs", "list") == []


def test_attached_train_runs_here_and_ctrl_c_cancels_with_a_checkpoint(
    home: Path, data: Path
) -> None:
    cli("train", str(data), "--task", "toy", "--set", "epochs=1", "--executor", "thread")
    (done,) = cli_json("jobs", "list")
    assert done["status"] == "COMPLETED"

    proc = subprocess.Popen(
        [sys.executable, "-m", "smalltrain.cli.main", "train", str(data), "--task", "toy",
         "--set", "epochs=100", "--set", "step_s=0.05"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # "job <id>: toy model ... on toydata (1 files)"
        job_id = first.split()[1].rstrip(":")
        with TrainingManager.open(home, autostart=False) as manager:
            _wait_for_event(home, job_id, "step")
            proc.send_signal(signal.SIGINT)  # the first Ctrl-C: cancel with a checkpoint
            out, _ = proc.communicate(timeout=120)
            out = first + out
            job = manager.get_job(job_id)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, out
    assert "Cancelling" in out
    assert job.status is JobStatus.CANCELLED
    assert job.checkpoint_path is not None
    assert Path(job.checkpoint_path).is_file()
    cli("resume", str(job.run_dir), "--detach")
    cli("jobs", "cancel", job_id)
    assert cli_json("jobs", "show", job_id)["status"] in ("CANCELLED", "CANCELLING")


@pytest.mark.slow
def test_audio_end_to_end_through_the_cli(home: Path, tmp_path: Path) -> None:
    sounds = audiojob.make_audio_dataset(tmp_path / "sounds")
    added = cli_json("datasets", "add", "sounds", str(sounds))
    assert added["kind"] == "audio"
    # 40 epochs: long enough that the cancel below always lands before the job could finish
    cli("train", "sounds", "--preset", "tiny", *audiojob.cli_sets(), "--set", "device=cpu",
        "--set", "epochs=40", "--model-name", "vae1", "--detach")  # fmt: skip
    (job,) = cli_json("jobs", "list")
    _wait_for_event(home, job["id"], "checkpoint")
    cli("jobs", "cancel", job["id"])
    cli("jobs", "wait", job["id"], "--quiet", code=1)
    assert cli_json("jobs", "show", job["id"])["status"] == "CANCELLED"
    cli("jobs", "resume", job["id"])
    cli("jobs", "wait", job["id"], "--quiet")
    (model,) = cli_json("models", "list", "sounds")
    assert model["name"] == "vae1"
    assert model["task"] == "audio"
    assert model["active"]
    cli("models", "activate", "vae1", "--dataset", "sounds")
    assert Path(model["weights"]).is_file()
