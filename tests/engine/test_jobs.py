"""The job state machine: every transition allowed and refused, and the job record."""

from __future__ import annotations

import itertools
import json

import pytest

from smalltrain.engine.jobs import (
    ACTIVE,
    RESUMABLE,
    TERMINAL,
    TRANSITIONS,
    JobStatus,
    TrainingJob,
    check_transition,
    seed_state,
    simple_state,
    transition,
)
from smalltrain.errors import InvalidTransition

S = JobStatus
ALLOWED = {
    (S.QUEUED, S.STARTING),
    (S.QUEUED, S.CANCELLED),
    (S.QUEUED, S.FAILED),
    (S.STARTING, S.QUEUED),
    (S.STARTING, S.TRAINING),
    (S.STARTING, S.CANCELLING),
    (S.STARTING, S.COMPLETED),
    (S.STARTING, S.CANCELLED),
    (S.STARTING, S.FAILED),
    (S.STARTING, S.INTERRUPTED),
    (S.TRAINING, S.CANCELLING),
    (S.TRAINING, S.COMPLETED),
    (S.TRAINING, S.CANCELLED),
    (S.TRAINING, S.FAILED),
    (S.TRAINING, S.INTERRUPTED),
    (S.CANCELLING, S.CANCELLED),
    (S.CANCELLING, S.COMPLETED),
    (S.CANCELLING, S.FAILED),
    (S.CANCELLING, S.INTERRUPTED),
    (S.CANCELLED, S.QUEUED),
    (S.FAILED, S.QUEUED),
    (S.INTERRUPTED, S.QUEUED),
}
ALL_PAIRS = list(itertools.product(JobStatus, repeat=2))


def test_table_covers_every_state_and_matches_the_spec() -> None:
    assert set(TRANSITIONS) == set(JobStatus)
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == ALLOWED


@pytest.mark.parametrize(("src", "dst"), sorted(ALLOWED))
def test_allowed_transition(src: JobStatus, dst: JobStatus) -> None:
    job = TrainingJob(task="audio", dataset_path="/data", status=src)
    assert transition(job, dst) is job
    assert job.status is dst


@pytest.mark.parametrize(("src", "dst"), [p for p in ALL_PAIRS if p not in ALLOWED])
def test_refused_transition_names_job_and_both_states(src: JobStatus, dst: JobStatus) -> None:
    job = TrainingJob(task="audio", dataset_path="/data", status=src)
    with pytest.raises(InvalidTransition) as info:
        transition(job, dst)
    assert str(info.value).startswith(f"Cannot move job {job.id} from {src.value} to {dst.value}")
    assert job.status is src


def test_final_state_message_says_final() -> None:
    with pytest.raises(InvalidTransition, match=r"COMPLETED is final"):
        check_transition("3f2a", "COMPLETED", "TRAINING")


def test_strings_are_accepted_and_unknown_states_refused() -> None:
    assert check_transition("x", "QUEUED", "STARTING") is S.STARTING
    with pytest.raises(ValueError, match="RUNNING"):
        check_transition("x", "QUEUED", "RUNNING")


def test_state_sets() -> None:
    assert {S.COMPLETED, S.CANCELLED, S.FAILED, S.INTERRUPTED} == TERMINAL
    assert {S.STARTING, S.TRAINING, S.CANCELLING} == ACTIVE
    assert {S.CANCELLED, S.FAILED, S.INTERRUPTED} == RESUMABLE
    assert all(TRANSITIONS[s] <= {S.QUEUED} for s in TERMINAL)


def test_seed_view() -> None:
    assert simple_state(S.QUEUED) == "idle"
    assert seed_state is simple_state  # the older name
    assert {simple_state(s) for s in ACTIVE} == {"training"}
    assert simple_state("COMPLETED") == "completed"
    assert {simple_state(s) for s in (S.CANCELLED, S.FAILED, S.INTERRUPTED)} == {"idle"}


def test_job_defaults_and_round_trip() -> None:
    job = TrainingJob(
        task="audio",
        dataset_path="/data",
        dataset="drums",
        config={"epochs": 3},
        last_metrics={"train/loss": 0.5},
    )
    assert len(job.id) == 12
    assert job.status is S.QUEUED
    assert job.queued_at == job.created_at
    data = json.loads(json.dumps(job.to_dict()))
    assert data["status"] == "QUEUED"
    assert TrainingJob.from_dict(data) == job


def test_from_row_decodes_json_columns() -> None:
    job = TrainingJob(task="detect", dataset_path="/d", artifacts={"weights": "/w.pt"})
    row = {**job.to_dict(), "config": "{}", "artifacts": '{"weights": "/w.pt"}', "seq": 7}
    assert TrainingJob.from_row(row) == job
