"""JobStore on a real SQLite file: migrations, queue, cancel, history, recovery, crash safety."""

from __future__ import annotations

import json
import math
import os
import selectors
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from smalltrain.engine.context import CancelMode
from smalltrain.engine.jobs import JobStatus, TrainingJob
from smalltrain.errors import InvalidTransition, JobNotFound
from smalltrain.store import DatasetRecord, JobStore
from smalltrain.store.schema import SCHEMA_VERSION, migrate, schema_version

S = JobStatus


@pytest.fixture
def store(tmp_path: Path) -> Iterator[JobStore]:
    with JobStore(tmp_path / "smalltrain.db") as s:
        yield s


def _job(store: JobStore, created_at: float, **kw: Any) -> TrainingJob:
    job = TrainingJob(task="audio", dataset_path="/data", created_at=created_at, **kw)
    return store.insert_job(job)


def _run_child(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True)


# -- schema ---------------------------------------------------------------------------------


def test_new_database_is_migrated_and_in_wal_mode(store: JobStore) -> None:
    con = store.db.connection()
    assert schema_version(con) == SCHEMA_VERSION == store.schema_version
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert con.execute("PRAGMA busy_timeout").fetchone()[0] == 10000
    assert store.db.integrity_check() == "ok"


def test_migrates_a_version_1_database_forward(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    con = sqlite3.connect(path, isolation_level=None)
    try:
        assert migrate(con, target=1) == 1
        con.execute(
            "INSERT INTO jobs (id, task, dataset_path, status, created_at) "
            "VALUES ('abcdef123456', 'audio', '/d', 'FAILED', 100.0)"
        )
    finally:
        con.close()
    with JobStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        job = store.get_job("abcdef123456")
        assert (job.status, job.queued_at, job.priority) == (S.FAILED, 100.0, 0)
        store.set_status(job.id, S.QUEUED)
        assert store.claim_next(1) is not None


def test_refuses_a_database_from_a_newer_smalltrain(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(RuntimeError, match="newer than this smalltrain"):
        JobStore(path)


# -- jobs -----------------------------------------------------------------------------------


def test_insert_get_by_prefix_and_update(store: JobStore) -> None:
    job = _job(store, 1.0, config={"epochs": 2}, dataset="drums")
    assert store.get_job(job.id[:4]).id == job.id
    assert store.get_job(job.id.upper()[:6]).id == job.id
    with pytest.raises(JobNotFound, match="smalltrain jobs list"):
        store.get_job("zzzzzzzz")
    with pytest.raises(JobNotFound, match="a prefix needs 4 characters or more"):
        store.get_job(job.id[:3])
    updated = store.update_job(job.id, epoch=1, progress=0.5, last_metrics={"train/loss": 0.25})
    again = store.get_job(job.id)
    assert again.epoch == updated.epoch == 1
    assert again.last_metrics == {"train/loss": 0.25}
    assert again.config == {"epochs": 2}
    with pytest.raises(TypeError, match="set_status"):
        store.update_job(job.id, status="TRAINING")
    with pytest.raises(TypeError, match="unknown job field"):
        store.update_job(job.id, colour="red")


def test_ambiguous_prefix_is_refused(store: JobStore) -> None:
    for suffix in ("00000001", "00000002"):
        store.insert_job(TrainingJob(task="audio", dataset_path="/d", id="abcd" + suffix))
    with pytest.raises(JobNotFound, match="several jobs"):
        store.get_job("abcd")


def test_list_jobs_newest_first_with_filters(store: JobStore) -> None:
    a = _job(store, 1.0, dataset="drums")
    b = _job(store, 2.0, dataset="birds")
    c = _job(store, 3.0, dataset="drums")
    store.request_cancel(b.id)
    assert [j.id for j in store.list_jobs()] == [c.id, b.id, a.id]
    assert [j.id for j in store.list_jobs(dataset="drums")] == [c.id, a.id]
    assert [j.id for j in store.list_jobs(status="CANCELLED")] == [b.id]
    assert [j.id for j in store.list_jobs(status=[S.QUEUED], limit=1, offset=1)] == [a.id]
    assert store.count_jobs(status=S.QUEUED) == 2


def test_set_status_validates_stamps_and_logs(store: JobStore) -> None:
    job = _job(store, 1.0)
    started = store.set_status(job.id, S.STARTING)
    assert started.started_at is not None
    assert started.finished_at is None
    store.set_status(job.id, S.TRAINING)
    done = store.set_status(job.id, S.COMPLETED, status_reason="finished 3 epochs")
    assert done.finished_at is not None
    assert done.progress == 1.0
    with pytest.raises(InvalidTransition, match=f"Cannot move job {job.id} from COMPLETED"):
        store.set_status(job.id, S.TRAINING)
    changes = [(e["from"], e["to"]) for _, e in store.history.events_after(job.id)]
    assert changes == [
        (None, "QUEUED"),
        ("QUEUED", "STARTING"),
        ("STARTING", "TRAINING"),
        ("TRAINING", "COMPLETED"),
    ]
    assert store.get_job(job.id).status_reason == "finished 3 epochs"


def test_claim_next_is_fifo_and_respects_max_concurrent(store: JobStore) -> None:
    jobs = [_job(store, float(t)) for t in (3, 1, 2)]
    first = store.claim_next(max_concurrent=2)
    second = store.claim_next(max_concurrent=2)
    assert first is not None
    assert second is not None
    assert [first.id, second.id] == [jobs[1].id, jobs[2].id]
    assert first.status is S.STARTING
    assert store.claim_next(max_concurrent=2) is None
    store.set_status(first.id, S.FAILED)
    third = store.claim_next(max_concurrent=2)
    assert third is not None
    assert third.id == jobs[0].id
    assert store.claim_next(max_concurrent=5) is None  # nothing queued


def test_a_resumed_job_queues_behind_waiting_ones_unless_prioritised(store: JobStore) -> None:
    old = _job(store, 1.0)
    store.claim_next(1)
    store.set_status(old.id, S.INTERRUPTED)
    waiting = _job(store, 2.0)
    store.set_status(old.id, S.QUEUED)
    claimed = store.claim_next(1)
    assert claimed is not None
    assert claimed.id == waiting.id
    urgent = _job(store, 3.0, priority=5)
    store.set_status(waiting.id, S.COMPLETED)
    claimed = store.claim_next(1)
    assert claimed is not None
    assert claimed.id == urgent.id


def test_concurrent_claims_from_threads_never_exceed_the_limit(store: JobStore) -> None:
    for i in range(8):
        _job(store, float(i))
    barrier = threading.Barrier(8)
    claimed: list[str] = []

    def claim() -> None:
        barrier.wait(timeout=30)
        job = store.claim_next(max_concurrent=3)
        if job is not None:
            claimed.append(job.id)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(claimed) == len(set(claimed)) == 3


CLAIMER = """
import sys
from smalltrain.store import JobStore
with JobStore(sys.argv[1]) as s:
    print("ready", flush=True)
    sys.stdin.readline()
    while (job := s.claim_next(max_concurrent=1000)) is not None:
        print(job.id, flush=True)
"""


def test_two_processes_never_claim_the_same_job(store: JobStore) -> None:
    ids = {_job(store, float(t)).id for t in range(60)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, str(store.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for p in procs:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ready"
    outputs = [p.communicate("go\n", timeout=120)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(outputs[0] + outputs[1]) == sorted(ids)


def test_cancel_queued_is_immediate_and_running_is_requested(store: JobStore) -> None:
    queued = _job(store, 1.0)
    cancelled = store.request_cancel(queued.id)
    assert cancelled.status is S.CANCELLED
    assert cancelled.finished_at is not None
    assert "before it started" in (cancelled.status_reason or "")

    running = _job(store, 2.0)
    store.claim_next(1)
    store.set_status(running.id, S.TRAINING)
    job = store.request_cancel(running.id)
    assert (job.status, job.cancel_requested) == (S.CANCELLING, "graceful")
    job = store.request_cancel(running.id, mode="immediate")
    assert store.get_job(running.id).cancel_requested == "immediate"
    store.set_status(running.id, S.CANCELLED)
    with pytest.raises(InvalidTransition, match="already CANCELLED"):
        store.request_cancel(running.id)
    not_a_mode = cast(CancelMode, "now")  # on purpose: the run-time check is under test
    with pytest.raises(ValueError, match="graceful"):
        store.request_cancel(running.id, mode=not_a_mode)


# -- attempts, events, metrics --------------------------------------------------------------


def test_attempts_are_numbered_and_closed(store: JobStore) -> None:
    job = _job(store, 1.0)
    assert store.history.start_attempt(job.id, pid=123) == 1
    store.history.finish_attempt(job.id, 1, "failed", exit_code=-9, error="killed")
    assert store.history.start_attempt(job.id, pid=456, resume_from="/ckpt.pt") == 2
    attempts = store.history.list_attempts(job.id)
    assert [(a.n, a.pid, a.outcome, a.exit_code) for a in attempts] == [
        (1, 123, "failed", -9),
        (2, 456, None, None),
    ]
    got = store.get_job(job.id)
    assert (got.attempts, got.resume_from) == (2, "/ckpt.pt")


def test_events_after_pages_through_new_events(store: JobStore) -> None:
    job = _job(store, 1.0)
    (last, _), *_ = reversed(store.history.events_after(job.id))
    store.history.append_events(
        job.id, [{"type": "step", "time": 1.0, "global_step": i} for i in range(5)]
    )
    page = store.history.events_after(job.id, after_id=last, limit=3)
    assert [e["global_step"] for _, e in page] == [0, 1, 2]
    rest = store.history.events_after(job.id, after_id=page[-1][0])
    assert [e["global_step"] for _, e in rest] == [3, 4]
    assert store.history.events_after(job.id, after_id=rest[-1][0]) == []


def test_metrics_in_batches_and_as_series(store: JobStore) -> None:
    job = _job(store, 1.0)
    rows = [("step", 0, s, "train/loss", 1.0 / (s + 1)) for s in range(100)]
    rows += [("step", 0, 100, "train/loss", math.nan), ("epoch", 0, 100, "val/loss", 0.5)]
    store.history.append_metrics(job.id, rows)
    series = store.history.metric_series(job.id, "train/loss")
    assert len(series) == 101
    assert series[:2] == [(0, 1.0), (1, 0.5)]
    assert math.isnan(series[-1][1])
    assert store.history.metric_series(job.id, "val/loss", scope="epoch") == [(0, 0.5)]
    assert store.history.metric_keys(job.id) == ["train/loss", "val/loss"]
    assert store.history.metric_keys(job.id, scope="epoch") == ["val/loss"]
    store.history.truncate_metrics(job.id, global_step=49, epoch=0)
    assert len(store.history.metric_series(job.id, "train/loss")) == 50
    assert store.history.metric_series(job.id, "val/loss", scope="epoch") == []


def test_deleting_a_job_cascades(store: JobStore) -> None:
    job = _job(store, 1.0)
    store.history.start_attempt(job.id, pid=1)
    store.history.append_metrics(job.id, [("step", 0, 0, "loss", 1.0)])
    assert store.delete_job(job.id[:6])
    assert not store.delete_job(job.id)
    con = store.db.connection()
    for table in ("attempts", "events", "metrics"):
        count = con.execute(f"SELECT COUNT(*) FROM {table} WHERE job_id = ?", (job.id,))
        assert count.fetchone()[0] == 0


def test_datasets_table(store: JobStore) -> None:
    rec = DatasetRecord("drums", "/data/drums", "audio", {"files": 3}, "3 files, 2.0 s", "ab")
    store.upsert_dataset(rec)
    assert store.get_dataset("drums") == rec
    assert store.list_datasets() == [rec]
    assert store.delete_dataset("drums")
    assert not store.delete_dataset("drums")
    assert store.get_dataset("drums") is None


# -- recovery and crash safety --------------------------------------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=60)
    return proc.pid


def test_recover_interrupted_with_a_real_dead_pid(store: JobStore) -> None:
    dead, alive, unstarted = (_job(store, float(t)) for t in (1, 2, 3))
    for job, pid in ((dead, _dead_pid()), (alive, os.getpid())):
        store.claim_next(5)
        store.history.start_attempt(job.id, pid=pid)
        store.set_status(job.id, S.TRAINING)
    store.claim_next(5)  # STARTING, but its process never started

    changed = store.recover_interrupted()
    assert sorted(changed) == sorted([dead.id, unstarted.id])
    got = store.get_job(dead.id)
    assert got.status is S.INTERRUPTED
    assert "is gone" in (got.status_reason or "")
    assert "jobs resume" in (got.status_reason or "")
    assert store.history.list_attempts(dead.id)[-1].outcome == "interrupted"
    assert store.get_job(alive.id).status is S.TRAINING
    assert store.get_job(unstarted.id).status is S.QUEUED


WRITER = """
import sys
from smalltrain.engine.jobs import TrainingJob
from smalltrain.store import JobStore
store = JobStore(sys.argv[1])
i = 0
while True:
    job = store.insert_job(TrainingJob(task="audio", dataset_path="/d",
                                       config={"n": i, "blob": "x" * 20000}))
    store.history.append_metrics(job.id, [("step", 0, s, "loss", float(s)) for s in range(500)])
    store.set_status(job.id, "STARTING", run_dir="/runs/" + job.id)
    i += 1
    if i == 5:
        print("ready", flush=True)
"""


def test_sigkill_mid_write_leaves_no_partial_job(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    JobStore(path).close()
    proc = _run_child(WRITER, str(path))
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        assert sel.select(timeout=120), "the writer never got going"
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL

    with JobStore(path) as store:
        assert store.db.integrity_check() == "ok"
        jobs = store.list_jobs(limit=None)
        assert len(jobs) >= 5
        con = store.db.connection()
        for job in jobs:
            assert job.config["blob"] == "x" * 20000
            n = con.execute("SELECT COUNT(*) FROM metrics WHERE job_id = ?", (job.id,))
            assert n.fetchone()[0] in (0, 500)  # a batch is all or nothing
            if job.status is S.STARTING:
                assert job.run_dir == "/runs/" + job.id
                assert job.started_at is not None
            changes = [e["to"] for _, e in store.history.events_after(job.id)]
            assert changes == ["QUEUED", "STARTING"][: 1 + (job.status is S.STARTING)]
        assert json.loads(json.dumps([j.to_dict() for j in jobs]))


def test_store_package_lists_its_main_names() -> None:
    """(That ``__all__`` is exactly the public names, and they import: tests/test_public_api.py.)"""
    import smalltrain.store as store_pkg

    assert {"JobStore", "ModelStore", "DatasetStore", "ModelInfo", "DatasetRecord"} <= set(
        store_pkg.__all__
    )
