"""The detection trainer's background checkpoint writer, through the CLI in real child processes.

- A real crash (SIGKILL of the job's training process) with the next last.pt written and fsynced
  but not yet renamed leaves the previous last.pt whole and resumable; ``smalltrain resume``
  carries on from it.
- A cancel that lands while an older snapshot is still being written ends CANCELLED with the
  cancel's own snapshot on disk (the latest wins, flushed before the job ends), and resume
  carries the epoch numbers on.

The hold point is ``tests.support.pacedtask.HeldWriterDetectTask`` (``detect-held``).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smalltrain.engine.ptinfo import peek
from smalltrain.tasks.detect.synth import make_shapes_dataset
from tests.support import pacedtask
from tests.tasks.detect.test_cancel_resume_cli import _events, _wait_for_pause, smalltrain

pytestmark = pytest.mark.slow


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    pacedtask.install(monkeypatch)
    home = tmp_path / "home"
    monkeypatch.setenv("SMALLTRAIN_HOME", str(home))
    data = make_shapes_dataset(tmp_path / "shapes", n_train=8, n_val=4)
    smalltrain(home, "datasets", "add", "shapes", str(data))
    return home


def _start(home: Path, tiny_model: Path, epochs: int) -> tuple[subprocess.Popen[str], str, Path]:
    train = subprocess.Popen(
        [sys.executable, "-m", "smalltrain.cli.main", "train", "shapes", "--task", "detect-held",
         "--set", f"base_model={tiny_model}", "--set", f"epochs={epochs}",
         "--set", "batch_size=4", "--set", "image_size=64", "--model-name", "m"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy(),
    )  # fmt: skip
    assert train.stdout is not None
    first = train.stdout.readline()  # "job <id>: detect-held model 'm' on shapes (...)"
    job_id = first.split()[1].rstrip(":")
    job = json.loads(smalltrain(home, "jobs", "show", job_id, "--json").stdout)
    return train, job_id, Path(job["run_dir"])


def _wait_for_hold(marker: Path, train: subprocess.Popen[str]) -> tuple[int, Path]:
    deadline = time.monotonic() + 240
    while not marker.is_file() or not marker.read_text():
        assert train.poll() is None, "the job ended before its writer reached the hold point"
        assert time.monotonic() < deadline, "the writer never reached the hold point"
        time.sleep(0.05)
    pid, tmp = marker.read_text().split(" ", 1)
    return int(pid), Path(tmp)


def _resume_completes(home: Path, job_id: str, start_epoch: int, epochs: int) -> None:
    resumed = smalltrain(home, "resume", job_id)
    assert "completed" in resumed.stdout
    job = json.loads(smalltrain(home, "jobs", "show", job_id, "--json").stdout)
    assert job["status"] == "COMPLETED", job["status_reason"]
    events = _events(home, job_id)
    starts = [e for e in events if e["type"] == "training_started"]
    assert starts[-1]["start_epoch"] == start_epoch
    assert starts[-1]["info"]["optimizer_state_tensors"] > 0
    (model,) = json.loads(smalltrain(home, "models", "list", "--json").stdout)
    history = json.loads((Path(model["path"]) / "metrics.json").read_text())["history"]
    assert [int(row["epoch"]) for row in history] == list(range(epochs))


def test_crash_between_write_and_rename_keeps_the_previous_last_pt(
    held: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(pacedtask.HOLD_ENV, "kill:2")  # hold epoch 1's last.pt before its rename
    train, job_id, run_dir = _start(held, tiny_model, epochs=3)
    try:
        pid, tmp = _wait_for_hold(run_dir / pacedtask.HELD_MARKER, train)
        assert pid != train.pid  # the job's own training process, not the CLI
        last = run_dir / "ultralytics" / "train" / "weights" / "last.pt"
        assert tmp.parent == last.parent
        assert tmp.stat().st_size > 0
        assert peek(tmp)["epoch"] == 1  # the new snapshot is complete on disk, not yet renamed
        os.kill(pid, signal.SIGKILL)
        out, _ = train.communicate(timeout=240)
    finally:
        if train.poll() is None:
            train.kill()
            train.communicate()
    assert train.returncode != 0, out
    job = json.loads(smalltrain(held, "jobs", "show", job_id, "--json").stdout)
    assert job["status"] == "FAILED", job["status_reason"]
    assert "killed" in job["status_reason"]

    state = peek(last)  # the previous snapshot, whole: epoch 0 with its optimizer state
    assert state["epoch"] == 0
    assert state["optimizer"] is not None
    _resume_completes(held, job_id, start_epoch=1, epochs=3)
    assert not list(last.parent.glob(".last.pt.*.tmp"))  # the crash's leftover is cleaned up


def test_cancel_while_an_older_snapshot_is_being_written(
    held: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # epoch 0's last.pt is held in the writer until the cancel, and training is paced to wait
    # for the cancel in epoch 1 (of 2): the cancel's snapshot is submitted while the older one
    # is still being written.
    monkeypatch.setenv(pacedtask.HOLD_ENV, "cancel:1")
    monkeypatch.setenv(pacedtask.PAUSE_ENV, "on_train_batch_start:1:1")
    train, job_id, run_dir = _start(held, tiny_model, epochs=2)
    try:
        _wait_for_hold(run_dir / pacedtask.HELD_MARKER, train)
        _wait_for_pause(held, job_id)
        smalltrain(held, "jobs", "cancel", job_id)
        out, _ = train.communicate(timeout=240)
    finally:
        if train.poll() is None:
            train.kill()
            train.communicate()
    assert train.returncode == 1, out
    job = json.loads(smalltrain(held, "jobs", "show", job_id, "--json").stdout)
    assert job["status"] == "CANCELLED", job["status_reason"]
    last = run_dir / "ultralytics" / "train" / "weights" / "last.pt"
    state = peek(last)
    assert state["epoch"] == 0
    assert state["optimizer"] is not None
    # The cancel's snapshot (its fitness is NaN), not the older epoch-0 one it superseded.
    assert math.isnan(state["train_metrics"]["fitness"])
    reasons = [e["reason"] for e in _events(held, job_id) if e["type"] == "checkpoint"]
    assert reasons[-1] == "cancel"
    _resume_completes(held, job_id, start_epoch=1, epochs=2)
