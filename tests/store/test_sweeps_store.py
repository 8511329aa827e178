"""Schema version 3 (sweeps, job placement) and ``SweepStore`` on a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from smalltrain.engine.jobs import JobStatus, TrainingJob
from smalltrain.errors import InvalidTransition, JobNotFound
from smalltrain.store import JobStore
from smalltrain.store.schema import SCHEMA_VERSION, migrate
from smalltrain.store.sweeps import SweepRecord, SweepStore

S = JobStatus


@pytest.fixture
def store(tmp_path: Path) -> Iterator[JobStore]:
    with JobStore(tmp_path / "smalltrain.db") as s:
        yield s


def test_a_version_2_database_gains_sweeps_and_placement(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    con = sqlite3.connect(path, isolation_level=None)
    try:
        assert migrate(con, target=2) == 2
        con.execute(
            "INSERT INTO jobs (id, task, dataset_path, status, created_at, queued_at) "
            "VALUES ('abcdef123456', 'audio', '/d', 'CANCELLED', 100.0, 100.0)"
        )
    finally:
        con.close()
    with JobStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION >= 3
        job = store.get_job("abcdef123456")
        assert (job.sweep_id, job.placement) == (None, {})
        job2 = store.insert_job(
            TrainingJob(task="audio", dataset_path="/d", placement={"num_gpus": 1.0})
        )
        assert store.get_job(job2.id).placement == {"num_gpus": 1.0}
        SweepStore(store).insert(
            SweepRecord(id="s1", task="audio", metric="val/sc", mode="min"), []
        )
        assert SweepStore(store).get("s1").status == "RUNNING"


def _trial(n: int) -> TrainingJob:
    return TrainingJob(task="toy", dataset_path="/d", artifacts={"trial": n})


def test_a_sweep_and_its_trials_are_stored_together(store: JobStore) -> None:
    sweeps = SweepStore(store)
    record = SweepRecord(id="abcd1234ef56", task="toy", metric="val/loss", mode="min",
                         dataset="d", spec={"trials": 2})  # fmt: skip
    sweeps.insert(record, [_trial(1), _trial(2)])
    trials = sweeps.trials(record.id)
    assert [t.artifacts["trial"] for t in trials] == [1, 2]
    assert {t.sweep_id for t in trials} == {record.id}
    assert sweeps.get("abcd").spec == {"trials": 2}  # by prefix
    assert [s.id for s in sweeps.newest()] == [record.id]
    with pytest.raises(JobNotFound, match="smalltrain sweep list"):
        sweeps.get("nope")
    # A failing insert (a duplicate sweep id) stores none of its trials.
    with pytest.raises(sqlite3.IntegrityError):
        sweeps.insert(record, [_trial(3)])
    assert store.count_jobs() == 2


def test_epoch_reports_come_in_arrival_order_and_skip_missing_values(store: JobStore) -> None:
    sweeps = SweepStore(store)
    a, b = _trial(1), _trial(2)
    sweeps.insert(SweepRecord(id="s", task="toy", metric="val/loss", mode="min"), [a, b])
    other = store.insert_job(TrainingJob(task="toy", dataset_path="/d"))  # not in the sweep
    for job, epoch, value in (
        (b, 0, 2.0),
        (a, 0, 1.0),
        (other, 0, 0.1),
        (a, 1, "nan"),
        (b, 1, 1.5),
    ):
        store.history.append_events(
            job.id, [{"type": "epoch", "epoch": epoch, "metrics": {"val/loss": value}}]
        )
    store.history.append_events(a.id, [{"type": "step", "epoch": 2, "metrics": {"val/loss": 0.0}}])
    reports = sweeps.epoch_reports("s", "val/loss")
    assert [(r.job_id, r.epoch, r.value) for r in reports] == [
        (b.id, 0, 2.0), (a.id, 0, 1.0), (b.id, 1, 1.5)
    ]  # fmt: skip
    assert reports == sorted(reports, key=lambda r: r.event_id)


def test_only_one_caller_claims_the_finalization(store: JobStore) -> None:
    sweeps = SweepStore(store)
    sweeps.insert(SweepRecord(id="s", task="toy", metric="m", mode="max"), [])
    wins: list[bool] = []
    threads = [threading.Thread(target=lambda: wins.append(sweeps.claim_finalize("s")))
               for _ in range(8)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 7 + [True]
    sweeps.update("s", status="COMPLETED", best_job_id="j", finished_at=1.0)
    assert sweeps.get("s").status == "COMPLETED"
    assert sweeps.running() == []
    with pytest.raises(ValueError, match="sweep status"):
        sweeps.update("s", status="DONE")
    with pytest.raises(TypeError, match="unknown sweep field"):
        sweeps.update("s", metric="x")


def test_set_statuses_writes_every_move_in_one_transaction(store: JobStore) -> None:
    job = store.insert_job(TrainingJob(task="toy", dataset_path="/d"))
    store.claim_next()
    store.set_status(job.id, S.TRAINING)
    done = store.set_statuses(job.id, [(S.INTERRUPTED, {"status_reason": "node died"}),
                                       (S.QUEUED, {"status_reason": "retry"})])  # fmt: skip
    assert done.status is S.QUEUED
    moves = [(e["from"], e["to"], e["reason"]) for _, e in store.history.events_after(job.id)
             if e["type"] == "status_change"]  # fmt: skip
    assert moves[-2:] == [
        ("TRAINING", "INTERRUPTED", "node died"),
        ("INTERRUPTED", "QUEUED", "retry"),
    ]
    # An invalid move anywhere writes nothing.
    with pytest.raises(InvalidTransition):
        store.set_statuses(job.id, [(S.CANCELLED, {}), (S.COMPLETED, {})])
    assert store.get_job(job.id).status is S.QUEUED
    assert json.loads(json.dumps(store.get_job(job.id).to_dict()))["status"] == "QUEUED"
