"""Detection cancel and resume through the CLI, in real child processes, with real Ultralytics.

One two-epoch job is cancelled three times, each time at an exact point in a real training
child (``pacedtask``), then resumed to COMPLETED: ``smalltrain train`` (and then each
``smalltrain resume``) runs attached in a subprocess, ``smalltrain jobs cancel`` (another
subprocess) cancels it where it waits. Checked at every cancel: the job ends CANCELLED (never
COMPLETED, also in the last epoch) with a resumable last.pt that keeps the optimizer state, the
command says how to resume, nothing is registered, and the next attempt carries the epoch
numbers on from where the checkpoint left them, with the optimizer state restored. At the end
every epoch is in the model's history once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from smalltrain.engine.ptinfo import peek
from smalltrain.service.manager import TrainingManager
from smalltrain.tasks.detect.synth import make_shapes_dataset
from tests.support import pacedtask


def smalltrain(home: Path, *args: str, code: int | None = 0) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a fresh interpreter."""
    proc = subprocess.run(
        [sys.executable, "-m", "smalltrain.cli.main", "--home", str(home), *args],
        capture_output=True, text=True, timeout=300, env=os.environ.copy(),
    )  # fmt: skip
    if code is not None:
        assert proc.returncode == code, (args, proc.stdout, proc.stderr)
    return proc


def _wait_for_pause(home: Path, job_id: str, nth: int = 1) -> None:
    """Wait for the job's ``nth`` pause. Events of earlier attempts are streamed too, and a
    job still CANCELLED from its last attempt (the resume has not queued it yet) is followed
    again from the last event read."""
    seen, after, deadline = 0, 0, time.monotonic() + 240
    with TrainingManager.open(home, autostart=False) as manager:
        while time.monotonic() < deadline:
            for event_id, event in manager.follow(job_id, after, timeout=240):
                after = event_id
                message = str(event.get("message", ""))
                if event["type"] == "log" and message.startswith("test pause"):
                    seen += 1
                    if seen == nth:
                        return
            manager.hub.wait_change(0.2)
    raise AssertionError(f"job {job_id} never reached pause {nth} ({seen} seen)")


def _events(home: Path, job_id: str) -> list[dict[str, Any]]:
    out = smalltrain(home, "jobs", "logs", job_id, "--json").stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


@pytest.fixture
def paced(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    pacedtask.install(monkeypatch)
    home = tmp_path / "home"
    monkeypatch.setenv("SMALLTRAIN_HOME", str(home))
    return home


EPOCHS = 2
# (where the cancel lands, the epoch last.pt records as done, the epoch the attempt starts at)
CANCELS = [
    # between epochs: the cancel arrives while epoch 0 is validated; resume starts epoch 1
    ("on_val_start:0:0", 0, 0),
    # in the middle of the last epoch (after its first batch): CANCELLED, resume redoes it
    ("on_train_batch_start:1:1", 0, 1),
    # during the validation of the last epoch: CANCELLED, not COMPLETED; resume redoes it
    ("on_val_start:1:0", 0, 1),
]


def _cancel_at(home: Path, command: list[str], job_id: str | None, nth: int) -> tuple[str, str]:
    """Run an attached ``smalltrain`` command, cancel its job at pause ``nth``; return the job
    id and everything the command printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "smalltrain.cli.main", *command],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy(),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = ""
        if job_id is None:
            first = proc.stdout.readline()  # "job <id>: detect-paced model 'm' on shapes (...)"
            job_id = first.split()[1].rstrip(":")
        _wait_for_pause(home, job_id, nth)
        smalltrain(home, "jobs", "cancel", job_id)
        out, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, first + out
    return job_id, first + out


@pytest.mark.slow
def test_cancel_three_times_then_smalltrain_resume_completes(
    paced: Path, tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_shapes_dataset(tmp_path / "shapes", n_train=12, n_val=4)
    smalltrain(paced, "datasets", "add", "shapes", str(data))
    train = ["train", "shapes", "--task", "detect-paced", "--set", f"base_model={tiny_model}",
             "--set", f"epochs={EPOCHS}", "--set", "batch_size=4", "--set", "image_size=64",
             "--model-name", "m"]  # fmt: skip
    job_id: str | None = None
    for nth, (pause, saved, start) in enumerate(CANCELS, 1):
        monkeypatch.setenv(pacedtask.PAUSE_ENV, pause)
        job_id, out = _cancel_at(paced, train if job_id is None else ["resume", job_id],
                                 job_id, nth)  # fmt: skip
        assert f"Resume with: smalltrain resume {job_id}" in out, (pause, out)
        job = json.loads(smalltrain(paced, "jobs", "show", job_id, "--json").stdout)
        assert job["status"] == "CANCELLED", (pause, job["status_reason"])
        assert json.loads(smalltrain(paced, "models", "list", "--json").stdout) == []
        last = Path(job["run_dir"]) / "ultralytics" / "train" / "weights" / "last.pt"
        state = peek(last)  # what the cancel left: the epoch done, optimizer state kept
        assert state["epoch"] == saved, pause
        assert state["optimizer"] is not None, pause
        started = [e for e in _events(paced, job_id) if e["type"] == "training_started"]
        assert len(started) == nth
        assert started[-1]["start_epoch"] == start, pause  # the epoch numbers carry on
        if nth > 1:
            assert started[-1]["info"]["optimizer_state_tensors"] > 0  # optimizer restored

    assert job_id is not None
    resumed = smalltrain(paced, "resume", job_id)
    assert "completed" in resumed.stdout
    job = json.loads(smalltrain(paced, "jobs", "show", job_id, "--json").stdout)
    assert job["status"] == "COMPLETED", job["status_reason"]
    assert [a["outcome"] for a in job["attempt_list"]] == ["cancelled"] * 3 + ["completed"]

    events = _events(paced, job_id)
    starts = [i for i, e in enumerate(events) if e["type"] == "training_started"]
    assert len(starts) == 4
    last_start = events[starts[-1]]
    assert last_start["start_epoch"] == 1
    assert last_start["info"]["optimizer_state_tensors"] > 0
    assert [e["epoch"] for e in events[starts[-1] :] if e["type"] == "epoch"] == [1]

    (model,) = json.loads(smalltrain(paced, "models", "list", "--json").stdout)
    history = json.loads((Path(model["path"]) / "metrics.json").read_text())["history"]
    assert [int(row["epoch"]) for row in history] == list(range(EPOCHS))  # each epoch once
    assert model["epochs_completed"] == EPOCHS
