"""What a kill leaves in a run folder: partial writes are cleaned at start-up, and a checkpoint
whose sidecar was never written is unverified (used only when nothing verified exists, and the
user is told)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from smalltrain.engine.checkpoint_index import choose_checkpoint, newest_verified
from smalltrain.engine.checkpoints import (
    capture_rng_state,
    find_resumable,
    save_checkpoint,
    sidecar_path,
)
from smalltrain.engine.jobs import JobStatus
from smalltrain.service.manager import JobSpec, TrainingManager

pytestmark = pytest.mark.usefixtures("toy")


def _state(seed: int) -> dict[str, object]:
    torch.manual_seed(seed)
    return {"model": {"w": torch.randn(4)}}


def test_a_checkpoint_without_sidecar_is_used_only_when_nothing_verified_exists(
    tmp_path: Path,
) -> None:
    older = save_checkpoint(tmp_path, _state(1), epoch=1, global_step=10)
    newer = save_checkpoint(tmp_path, _state(2), epoch=2, global_step=20)
    sidecar_path(newer).unlink()  # killed between the rename and the sidecar
    assert newest_verified(tmp_path) == older
    point = choose_checkpoint(tmp_path)
    assert point is not None
    assert point.path == older
    assert point.note is None
    found = find_resumable(tmp_path)
    assert found is not None
    assert found[0] == older
    # with nothing verified left, the unverified one is used, and the note says so
    sidecar_path(older).unlink()
    point = choose_checkpoint(tmp_path)
    assert point is not None
    assert point.path == newer
    assert "unverified" in (point.note or "")
    assert "sidecar" in (point.note or "")


def test_an_empty_checkpoint_is_never_chosen(tmp_path: Path) -> None:
    good = save_checkpoint(tmp_path, _state(1), epoch=1, global_step=10)
    (tmp_path / "ckpt-e0002-s00000020.pt").write_bytes(b"")
    assert newest_verified(tmp_path) == good


def _job_with_checkpoints(home: Path, data: Path) -> tuple[TrainingManager, str, Path]:
    manager = TrainingManager.open(home, autostart=False, executor="inline")
    job_id = manager.start_training(JobSpec(dataset=data, task="toy", overrides={"epochs": 1}))
    manager.cancel(job_id)  # cancelled while queued: resumable, with no checkpoint yet
    run_dir = Path(manager.get_job(job_id).run_dir or "")
    ckpts = run_dir / "checkpoints"
    return manager, job_id, ckpts


def test_resume_cleans_partial_writes_and_says_when_a_checkpoint_is_unverified(
    tmp_path: Path, toydata: Path
) -> None:
    manager, job_id, ckpts = _job_with_checkpoints(tmp_path / "home", toydata)
    with manager:
        lone = save_checkpoint(ckpts, _toy_state(), epoch=1, global_step=4)
        sidecar_path(lone).unlink()
        partial = ckpts / ".ckpt-e0002-s00000008.pt.k3j2h1g0.tmp"
        partial.write_bytes(b"")  # a kill during a checkpoint write
        other = ckpts.parent / ".state.bin.a1b2c3d4.tmp"
        other.write_bytes(b"half")
        weights = ckpts.parent / "ultralytics" / "train" / "weights"
        weights.mkdir(parents=True)
        detection = weights / ".last.pt.q1w2e3r4.tmp"  # detection's writer, killed mid-file
        detection.write_bytes(b"half")
        manager.resume(job_id)
        assert not partial.exists()
        assert not other.exists()
        assert not detection.exists()
        job = manager.get_job(job_id)
        assert job.status is JobStatus.QUEUED
        assert "WARNING" in (job.status_reason or "")
        assert "unverified" in (job.status_reason or "")
        assert job.resume_from == str(lone)


def _toy_state() -> dict[str, object]:
    """A checkpoint the toy task resumes from (its epoch 1 of 1: it finishes at once)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    return {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "rng": capture_rng_state(),
        "model_args": {"hidden": 8},
        "next_epoch": 1,
        "next_step": 0,
        "best": 1.0,
    }


def test_the_scheduler_cleans_partial_writes_before_a_job_starts(
    tmp_path: Path, toydata: Path
) -> None:
    manager, job_id, ckpts = _job_with_checkpoints(tmp_path / "home", toydata)
    with manager:
        save_checkpoint(ckpts, _toy_state(), epoch=1, global_step=4)
        manager.resume(job_id)
        partial = ckpts / ".ckpt-e0001-s00000004.pt.zz99yy88.tmp"
        partial.write_bytes(b"")  # appeared after the resume was queued
        manager.run_scheduler(until_idle=True)
        assert not partial.exists()
        job = manager.get_job(job_id)
        assert job.status is JobStatus.COMPLETED, job.status_reason
