"""Placement settings, the thread budget, and retrying a job whose machine went away (a real
SQLite file; the attempts and checkpoints are real records and files)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from smalltrain.engine.jobs import JobStatus, TrainingJob
from smalltrain.errors import ConfigError
from smalltrain.service.execution.placement import Placement, split_placement
from smalltrain.service.execution.threads import child_env, child_environment, thread_budget
from smalltrain.service.retry import interrupt_and_retry
from smalltrain.store import JobStore

S = JobStatus


def test_placement_keys_leave_the_task_overrides_and_are_validated() -> None:
    task, placement = split_placement({"epochs": "3", "num_gpus": "1", "max_retries": "0"})
    assert task == {"epochs": "3"}
    assert placement == Placement(num_gpus=1.0, max_retries=0)
    assert placement.to_dict() == {"num_gpus": 1.0, "max_retries": 0}
    assert Placement.from_dict(placement.to_dict()) == placement
    for bad in (
        {"num_cpus": "0"},
        {"num_gpus": "-1"},
        {"max_retries": "-2"},
        {"ship_dataset": "x"},
    ):
        with pytest.raises(ConfigError):
            split_placement(bad)


def test_gpus_follow_the_device_unless_set() -> None:
    assert Placement().gpus_for("cuda:1", cluster_has_gpu=False) == 1.0
    assert Placement().gpus_for("cpu", cluster_has_gpu=True) == 0.0
    assert Placement().gpus_for("auto", cluster_has_gpu=True) == 1.0
    assert Placement().gpus_for("auto", cluster_has_gpu=False) == 0.0
    assert Placement(num_gpus=0.5).gpus_for("cpu", cluster_has_gpu=False) == 0.5


def test_thread_budget_and_child_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert thread_budget(2, cores=8) == 4
    assert thread_budget(3, cores=2) == 1
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert child_env(2)["OMP_NUM_THREADS"] == "2"
    with child_environment(3):
        assert os.environ["OMP_NUM_THREADS"] == "3"
        assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    assert "OMP_NUM_THREADS" not in os.environ
    assert "OMP_WAIT_POLICY" not in os.environ
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # the user's choice wins
    assert "OMP_WAIT_POLICY" not in child_env(1)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[JobStore]:
    with JobStore(tmp_path / "smalltrain.db") as s:
        yield s


def _running(store: JobStore, run_dir: Path, task: str = "toy", **placement: object) -> TrainingJob:
    job = store.insert_job(
        TrainingJob(task=task, dataset_path="/d", run_dir=str(run_dir), placement=placement)
    )
    store.claim_next()
    store.history.start_attempt(job.id, os.getpid())
    store.set_status(job.id, S.TRAINING)
    return job


def _checkpoint(run_dir: Path, epoch: int) -> Path:
    path = run_dir / "checkpoints" / f"ckpt-e{epoch:04d}-s{epoch * 4:08d}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * epoch)
    path.with_suffix(".json").write_text(json.dumps({"epoch": epoch, "size": epoch}))
    return path


# The task says where a run resumes (Task.resume_point); both kinds of registered task are asked.
@pytest.mark.usefixtures("toy_task")
@pytest.mark.parametrize("task", ["toy", "audio"])
def test_an_interrupted_job_is_queued_again_from_its_newest_checkpoint_in_its_place(
    store: JobStore, tmp_path: Path, task: str
) -> None:
    job = _running(store, tmp_path / "run", task, max_retries=1)
    later = store.insert_job(TrainingJob(task="toy", dataset_path="/d"))
    _checkpoint(tmp_path / "run", 1)
    newest = _checkpoint(tmp_path / "run", 2)
    store.history.finish_attempt(job.id, 1, "interrupted", None, "node died")
    assert interrupt_and_retry(store, job.id, {"status_reason": "the Ray node x died"})
    again = store.get_job(job.id)
    assert again.status is S.QUEUED
    assert again.resume_from == str(newest)
    assert "retry 1 of 1 from ckpt-e0002" in (again.status_reason or "")
    first, second = store.claim_next(2), store.claim_next(2)
    assert first is not None
    assert second is not None
    assert (first.id, second.id) == (job.id, later.id)  # ahead of the job queued after it

    # The retry is used up: the next interruption is final and says how to resume.
    store.history.start_attempt(job.id, os.getpid())
    store.set_status(job.id, S.TRAINING)
    store.history.finish_attempt(job.id, 2, "interrupted", None, "node died again")
    assert not interrupt_and_retry(store, job.id, {"status_reason": "the Ray node y died"})
    final = store.get_job(job.id)
    assert final.status is S.INTERRUPTED
    assert "not retried again after 1 retries" in (final.status_reason or "")
    assert f"smalltrain jobs resume {job.id}" in (final.status_reason or "")


@pytest.mark.usefixtures("toy_task")
@pytest.mark.parametrize("task", ["toy", "audio"])
def test_a_job_with_no_checkpoint_yet_is_retried_from_the_start(
    store: JobStore, tmp_path: Path, task: str
) -> None:
    job = _running(store, tmp_path / "run", task)
    store.history.finish_attempt(job.id, 1, "interrupted")
    assert interrupt_and_retry(store, job.id, {"status_reason": "worker died"})
    again = store.get_job(job.id)
    assert (again.status, again.resume_from) == (S.QUEUED, None)
    assert "from the start" in (again.status_reason or "")
