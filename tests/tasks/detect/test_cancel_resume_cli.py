"""Detection cancel and resume through the CLI, in real child processes, with real Ultralytics.

``smalltrain train`` runs attached in a subprocess; the job's real training child pauses at an
exact point (``pacedtask``); ``smalltrain jobs cancel`` (another subprocess) cancels it there;
``smalltrain resume`` then brings the job to COMPLETED. Checked each time: the job ends
CANCELLED (never COMPLETED, also in the last epoch) with a resumable last.pt that keeps the
optimizer state, the train command says how to resume, and the resumed attempt carries the
epoch numbers on from where the checkpoint left them, with the optimizer state restored.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

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


def _wait_for_pause(home: Path, job_id: str) -> None:
    with TrainingManager.open(home, autostart=False) as manager:
        for _, event in manager.follow(job_id, timeout=240):
            if event["type"] == "log" and str(event.get("message", "")).startswith("test pause"):
                return
    raise AssertionError(f"job {job_id} ended before it reached the pause point")


def _events(home: Path, job_id: str) -> list[dict[str, Any]]:
    out = smalltrain(home, "jobs", "logs", job_id, "--json").stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


@pytest.fixture
def paced(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    pacedtask.install(monkeypatch)
    home = tmp_path / "home"
    monkeypatch.setenv("SMALLTRAIN_HOME", str(home))
    return home


# (epochs, where the cancel lands, the epoch last.pt records as done). Two epochs each: the
# cancel in the middle of a non-final epoch is covered through the task API in test_train.py.
CASES = {
    # between epochs: the cancel arrives while epoch 0 is validated; resume starts epoch 1
    "boundary": (2, "on_val_start:0:0", 0),
    # in the middle of the last epoch (after its first batch): CANCELLED, resume redoes it
    "mid-epoch": (2, "on_train_batch_start:1:1", 0),
    # during the validation of the last epoch: CANCELLED, not COMPLETED; resume redoes it
    "last-epoch": (2, "on_val_start:1:0", 0),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_cancel_then_smalltrain_resume(
    case: str, paced: Path, tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    epochs, pause, saved = CASES[case]
    monkeypatch.setenv(pacedtask.PAUSE_ENV, pause)
    data = make_shapes_dataset(tmp_path / "shapes", n_train=12, n_val=4)
    smalltrain(paced, "datasets", "add", "shapes", str(data))
    train = subprocess.Popen(
        [sys.executable, "-m", "smalltrain.cli.main", "train", "shapes", "--task", "detect-paced",
         "--set", f"base_model={tiny_model}", "--set", f"epochs={epochs}",
         "--set", "batch_size=4", "--set", "image_size=64", "--model-name", "m"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy(),
    )  # fmt: skip
    try:
        assert train.stdout is not None
        first = train.stdout.readline()  # "job <id>: detect-paced model 'm' on shapes (...)"
        job_id = first.split()[1].rstrip(":")
        _wait_for_pause(paced, job_id)
        smalltrain(paced, "jobs", "cancel", job_id)
        out, _ = train.communicate(timeout=240)
    finally:
        if train.poll() is None:
            train.kill()
            train.communicate()
    out = first + out
    assert train.returncode == 1, out
    assert f"Resume with: smalltrain resume {job_id}" in out

    job = json.loads(smalltrain(paced, "jobs", "show", job_id, "--json").stdout)
    assert job["status"] == "CANCELLED", job["status_reason"]
    assert json.loads(smalltrain(paced, "models", "list", "--json").stdout) == []
    last = Path(job["run_dir"]) / "ultralytics" / "train" / "weights" / "last.pt"
    cancelled_last = tmp_path / "cancelled-last.pt"
    shutil.copyfile(last, cancelled_last)  # the resumed run ends by stripping last.pt

    resumed = smalltrain(paced, "resume", job_id)
    assert "completed" in resumed.stdout
    job = json.loads(smalltrain(paced, "jobs", "show", job_id, "--json").stdout)
    assert job["status"] == "COMPLETED", job["status_reason"]
    assert [a["outcome"] for a in job["attempt_list"]] == ["cancelled", "completed"]

    events = _events(paced, job_id)
    starts = [i for i, e in enumerate(events) if e["type"] == "training_started"]
    assert len(starts) == 2
    second = events[starts[1]]
    assert second["start_epoch"] == saved + 1  # the epoch numbers carry on
    assert second["info"]["optimizer_state_tensors"] > 0  # optimizer state restored
    after = [e["epoch"] for e in events[starts[1] :] if e["type"] == "epoch"]
    assert after == list(range(saved + 1, epochs))

    from smalltrain.engine.ptinfo import peek

    state = peek(cancelled_last)  # what the cancel left: the epoch done, optimizer state kept
    assert state["epoch"] == saved
    assert state["optimizer"] is not None

    (model,) = json.loads(smalltrain(paced, "models", "list", "--json").stdout)
    history = json.loads((Path(model["path"]) / "metrics.json").read_text())["history"]
    assert [int(row["epoch"]) for row in history] == list(range(epochs))  # each epoch once
    assert model["epochs_completed"] == epochs
