"""A full disk at every write site: one clear ``DiskFull`` naming the path, the space needed and
the space left; nothing half-written; the job ends FAILED with that reason; nothing hangs.

The disk is real: a small tmpfs filled with a ballast file (``conftest.small_disk``). Where a
site writes after another one on the same disk, the disk is filled between the two writes, as
another program filling the disk would.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from smalltrain.engine.checkpoints import (
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
    sidecar_path,
)
from smalltrain.engine.context import CancelToken
from smalltrain.engine.eventlog import EventLog
from smalltrain.engine.fsutil import PARTIAL_WRITE_RE, atomic_write, atomic_write_bytes
from smalltrain.engine.jobs import JobStatus
from smalltrain.engine.runner import TrainingRunner
from smalltrain.errors import DiskFull
from smalltrain.service.manager import TrainingManager
from smalltrain.store.db import JobStore
from smalltrain.store.models import ModelEntry, ModelStore
from smalltrain.tasks import toy as toytask
from tests.faults.conftest import MIB, SmallDisk

# "needs 1.2 MB, 0 B left" or "needs more than the 64 B written when the disk ran out, 0 B left"
_SPACE = re.compile(r"needs .*\d+(\.\d)? (B|KB|MB|GB).*, \d+(\.\d)? (B|KB|MB|GB) left")


def _assert_clear(exc: DiskFull, path: Path | str) -> None:
    text = str(exc)
    assert str(path) in text, text
    assert _SPACE.search(text), text
    assert "\n" not in text


def _partials(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if PARTIAL_WRITE_RE.match(p.name))


def _state(n: int = 200_000) -> dict[str, Any]:
    return {"model": {"w": torch.arange(n, dtype=torch.float32)}, "model_args": {"n": n}}


# --- each write site -----------------------------------------------------------------------------


def test_checkpoint_is_refused_before_writing_and_the_previous_one_stays(disk: SmallDisk) -> None:
    ckpts = disk.path / "run" / "checkpoints"
    first = save_checkpoint(ckpts, _state(1000), epoch=0, global_step=1)
    disk.fill(leave=512 * 1024)  # less than the checkpoint (800 KB) plus the 1 MiB margin
    with pytest.raises(DiskFull) as info:
        save_checkpoint(ckpts, _state(), epoch=1, global_step=2)
    _assert_clear(info.value, ckpts / "ckpt-e0001-s00000002.pt")
    assert "checkpoint" in str(info.value)
    assert [i.path for i in list_checkpoints(ckpts)] == [first]
    assert load_checkpoint(first)["global_step"] == 1
    assert _partials(disk.path) == []


def test_a_full_disk_at_the_sidecar_takes_the_checkpoint_back(
    disk: SmallDisk, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smalltrain.engine import checkpoints

    ckpts = disk.path / "checkpoints"
    first = save_checkpoint(ckpts, _state(1000), epoch=0, global_step=1)
    real = checkpoints.atomic_write_json

    def fill_then_write(path: Path, obj: Any, **kw: Any) -> Path:
        disk.fill()  # another program takes the rest of the disk between the two files
        return real(path, obj, **kw)

    monkeypatch.setattr(checkpoints, "atomic_write_json", fill_then_write)
    with pytest.raises(DiskFull) as info:
        save_checkpoint(ckpts, _state(1000), epoch=1, global_step=2)
    _assert_clear(info.value, sidecar_path(ckpts / "ckpt-e0001-s00000002.pt"))
    # no checkpoint without its sidecar is left to be mistaken for a verified one
    assert [i.path for i in list_checkpoints(ckpts)] == [first]
    assert _partials(disk.path) == []


def test_torch_short_write_becomes_disk_full(disk: SmallDisk) -> None:
    """torch's zip writer reports a full disk as "unexpected pos N vs M" (the case the probe saw
    for the exported model); it must read as a full disk, naming the file."""
    target = disk.path / "export" / "best.pt"
    disk.fill(leave=64 * 1024)
    with pytest.raises(DiskFull) as info:
        atomic_write(target, lambda f: torch.save(_state(), f))
    _assert_clear(info.value, target)
    assert "unexpected pos" in repr(info.value.__cause__) or info.value.__cause__ is not None
    assert not target.exists()
    assert _partials(disk.path) == []


def _save_model(store: ModelStore, weights: Path, name: str = "m1", job_id: str = "j1") -> Any:
    return store.save(ModelEntry(
        dataset="ds",
        name=name,
        weights=weights,
        task="toy",
        config={"epochs": 1},
        metrics={"loss": 0.5},
        base_model=None,
        epochs_completed=1,
        headline=("best_loss", 0.5),
        dataset_snapshot="1 file",
        dataset_fingerprint="abc",
        job_id=job_id,
    ))  # fmt: skip


def test_model_folder_copy_names_the_model_and_its_size(disk: SmallDisk, tmp_path: Path) -> None:
    weights = tmp_path / "best.pt"
    weights.write_bytes(b"w" * (3 * MIB))
    store = ModelStore(disk.path / "models")
    disk.fill(leave=1 * MIB)
    with pytest.raises(DiskFull) as info:
        _save_model(store, weights)
    _assert_clear(info.value, disk.path / "models" / "ds" / "models")
    assert "3.0 MB" in str(info.value)
    assert store.list("ds") == []
    assert sorted(p.name for p in (disk.path / "models" / "ds" / "models").iterdir()) == []


@pytest.mark.parametrize("site", ["config.yaml", "registry.json"])
def test_model_files_and_registry(
    site: str, disk: SmallDisk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smalltrain.store import model_folder, models

    weights = tmp_path / "best.pt"
    weights.write_bytes(b"w" * 1000)
    store = ModelStore(disk.path / "models")
    _save_model(store, weights, name="kept", job_id="j0")
    module, name = (
        (model_folder, "atomic_write_text")
        if site == "config.yaml"
        else (models, "atomic_write_json")
    )
    real = getattr(module, name)

    def fill_then_write(path: Path, data: Any, *args: Any, **kw: Any) -> Path:
        if Path(path).name == site:
            disk.fill()
        return real(path, data, *args, **kw)

    monkeypatch.setattr(module, name, fill_then_write)
    with pytest.raises(DiskFull) as info:
        _save_model(store, weights)
    assert site in str(info.value)
    _assert_clear(info.value, Path(info.value.path))
    disk.empty()
    # the registry still parses, and holds the earlier model only; no half-made folder is left
    assert [m.name for m in store.list("ds")] == ["kept"]
    folders = sorted(p.name for p in (disk.path / "models" / "ds" / "models").iterdir())
    assert folders == ["kept"]


def test_database_names_its_file_and_works_again_once_space_is_back(
    disk: SmallDisk,
) -> None:
    store = JobStore(disk.path / "smalltrain.db")
    job = store.insert_job(toytask_job(disk.path))
    disk.fill()
    rows = [{"type": "log", "message": "x" * 200, "i": i} for i in range(2000)]  # new pages
    with pytest.raises(DiskFull) as info:
        store.history.append_events(job.id, rows)
    _assert_clear(info.value, disk.path / "smalltrain.db")
    assert "job database" in str(info.value)
    disk.empty()
    store.history.append_events(job.id, [{"type": "log", "message": "after"}])
    assert store.db.integrity_check() == "ok"
    store.close()


def toytask_job(root: Path) -> Any:
    from smalltrain.engine.jobs import TrainingJob

    return TrainingJob(task="toy", dataset_path=str(root), dataset="toydata", model_name="m")


def test_events_log_names_its_file(
    disk: SmallDisk, toy: None, toydata: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = toytask.ToyTask()
    runner = TrainingRunner(
        task, toytask.ToyConfig(epochs=1), toydata, disk.path / "run", job_id="ev1"
    )
    real = EventLog.__call__
    filled: list[int] = []

    def fill_first(self: EventLog, event: Any) -> None:
        if not filled:
            filled.append(1)
            disk.fill()
        real(self, event)

    # The events log is secondary (it stops with a warning); the next checkpoint fails.
    monkeypatch.setattr(EventLog, "__call__", fill_first)
    runner.start()
    runner.wait(60)
    assert runner.result is None
    assert isinstance(runner.error, DiskFull), runner.error
    assert "events log" in str(runner.error) or "checkpoint" in str(runner.error)
    _assert_clear(runner.error, Path(runner.error.path))


def test_a_raw_enospc_from_a_task_reads_as_disk_full(
    disk: SmallDisk, toy: None, toydata: Path
) -> None:
    """A task writing with its own code (the audio cache, Ultralytics) gets the same message."""
    from smalltrain.service.execution.attempt import AttemptSpec, run_task

    spec = AttemptSpec(
        job_id="raw1",
        task="toy",
        config={"epochs": 1, "steps_per_epoch": 1, "scratch_bytes": 8 * MIB},
        dataset_path=toydata,
        run_dir=disk.path / "run",
    )
    outcome = run_task(spec, lambda e: None, CancelToken())
    assert outcome.status == "failed"
    assert outcome.traceback is None  # a full disk is the machine's state, not a bug
    assert (outcome.error or "").startswith("no space left to write")
    assert str(disk.path) in (outcome.error or "")


def test_atomic_write_leaves_nothing_on_a_full_disk(disk: SmallDisk) -> None:
    target = disk.path / "x" / "blob.bin"
    atomic_write_bytes(target, b"old")
    disk.fill()
    with pytest.raises(DiskFull) as info:
        atomic_write_bytes(target, b"n" * (2 * MIB), what="test file")
    _assert_clear(info.value, target)
    assert "needs 2.0 MB" in str(info.value)
    assert target.read_bytes() == b"old"
    assert _partials(disk.path) == []


def test_detection_writer_thread_reports_a_full_disk_and_keeps_last_pt(disk: SmallDisk) -> None:
    """Detection's last.pt is written on a background thread: the full disk is still one
    ``DiskFull`` (raised on the training thread at the next flush), and the previous last.pt
    stays whole."""
    from smalltrain.tasks.detect.writer import CheckpointWriter

    last = disk.path / "ultralytics" / "train" / "weights" / "last.pt"
    writer = CheckpointWriter()
    try:
        writer.submit(last, b"epoch 1")
        writer.flush()
        disk.fill()
        writer.submit(last, lambda: b"e" * (2 * MIB))
        with pytest.raises(DiskFull) as info:
            writer.flush()
    finally:
        with contextlib.suppress(DiskFull):
            writer.close()
    _assert_clear(info.value, last)
    assert "checkpoint" in str(info.value)
    assert last.read_bytes() == b"epoch 1"
    assert _partials(disk.path) == []


# --- a whole job, through the CLI ---------------------------------------------------------------


def _cli(home: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "smalltrain.cli.main", "--home", str(home), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for_checkpoint(home: Path, job_id: str) -> None:
    with TrainingManager.open(home, autostart=False) as manager:
        for _, event in manager.follow(job_id, timeout=120):
            if event["type"] == "checkpoint":
                return
    raise AssertionError("the job ended before its first checkpoint")


def _job_id(proc: subprocess.Popen[str]) -> tuple[str, str]:
    assert proc.stdout is not None
    first = proc.stdout.readline()  # "job <id>: toy model ..."
    assert first.startswith("job "), first
    return first.split()[1].rstrip(":"), first


def test_a_nearly_full_home_is_refused_at_once(disk: SmallDisk, toy: None, toydata: Path) -> None:
    """The probe's case: home on a 4 MB tmpfs with under 300 KB free made `train` hang for
    minutes and left the job STARTING."""
    disk.fill(leave=256 * 1024)
    proc = _cli(disk.path, "train", str(toydata), "--task", "toy")
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:  # the hang this test is about: do not leave it running
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, out
    assert "Traceback" not in out
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) <= 3, out  # one error line (rich may wrap it)
    assert "not enough free space" in out
    assert str(disk.path) in " ".join(lines)
    with TrainingManager.open(disk.path, autostart=False) as manager:
        assert all(j.status not in (JobStatus.STARTING, JobStatus.TRAINING)
                   for j in manager.list_jobs())  # fmt: skip


@pytest.mark.parametrize("where", ["home", "run-dir"])
def test_disk_fills_during_training_job_fails_with_the_reason(
    where: str, big_disk: SmallDisk, toy: None, toydata: Path, tmp_path: Path
) -> None:
    home = big_disk.path if where == "home" else tmp_path / "home"
    extra = ["--run-dir", str(big_disk.path / "run")] if where == "run-dir" else []
    proc = _cli(home, "train", str(toydata), "--task", "toy", "--set", "epochs=50",
                "--set", "step_s=0.05", *extra)  # fmt: skip
    try:
        job_id, first = _job_id(proc)
        _wait_for_checkpoint(home, job_id)
        big_disk.fill()
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    out = first + out
    assert proc.returncode == 1, out
    assert "Traceback" not in out, out
    assert "no space left to write" in out, out
    with TrainingManager.open(home, autostart=False) as manager:
        job = manager.get_job(job_id)
        assert job.status is JobStatus.FAILED, (job.status, job.status_reason)
        assert "no space left to write" in (job.error or ""), job.error
        assert manager.jobs.db.integrity_check() == "ok"
        run_dir = Path(job.run_dir or "")
    big_disk.empty()
    # every checkpoint left is whole and matches its sidecar: the job can resume
    infos = list_checkpoints(run_dir / "checkpoints")
    assert infos
    for info in infos:
        assert load_checkpoint(info.path)["format"] == 1
        assert json.loads(sidecar_path(info.path).read_text())["sha256"]
    assert _partials(run_dir) == []


def test_one_ctrl_c_stops_a_job_on_a_full_disk(
    big_disk: SmallDisk, toy: None, toydata: Path
) -> None:
    """The disk fills while a job trains far from its next checkpoint: nothing can be recorded.
    One Ctrl-C stops it and the command exits, without tracebacks."""
    proc = _cli(big_disk.path, "train", str(toydata), "--task", "toy", "--set", "epochs=3",
                "--set", "steps_per_epoch=400", "--set", "step_s=0.05")  # fmt: skip
    try:
        job_id, first = _job_id(proc)
        with TrainingManager.open(big_disk.path, autostart=False) as manager:
            for _, event in manager.follow(job_id, timeout=120):
                if event["type"] == "step":
                    break
        big_disk.fill()
        time.sleep(0.5)  # let it train on a full disk for a moment
        proc.send_signal(signal.SIGINT)  # one Ctrl-C
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    out = first + out
    assert proc.returncode in (1, 130), out
    assert "Traceback" not in out, out
    assert "Cancelling" in out
    big_disk.empty()
    with TrainingManager.open(big_disk.path, autostart=False) as manager:
        job = manager.get_job(job_id)
        assert job.status in (JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.INTERRUPTED)
        assert manager.jobs.db.integrity_check() == "ok"
