"""The store's read side for faces: charts, event types, newest event id, jobs by task."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from smalltrain.engine.jobs import TrainingJob
from smalltrain.store import JobStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[JobStore]:
    with JobStore(tmp_path / "smalltrain.db") as s:
        yield s


def test_a_short_curve_comes_back_whole(store: JobStore) -> None:
    job = store.insert_job(TrainingJob(task="audio", dataset_path="/d"))
    store.history.append_metrics(
        job.id, [("step", 0, s, "train/loss", float(s)) for s in range(10)]
    )
    assert store.history.metric_series_sampled(
        job.id, "train/loss", max_points=50
    ) == store.history.metric_series(job.id, "train/loss")


def test_a_long_curve_is_averaged_in_equal_runs(store: JobStore) -> None:
    job = store.insert_job(TrainingJob(task="audio", dataset_path="/d"))
    rows = [("step", s // 100, s, "train/loss", float(s)) for s in range(10_000)]
    rows[5] = ("step", 0, 5, "train/loss", math.nan)
    store.history.append_metrics(job.id, rows)
    points = store.history.metric_series_sampled(job.id, "train/loss", max_points=100)
    assert len(points) == 100
    assert [x for x, _ in points] == list(range(0, 10_000, 100))
    assert points[1] == (100, sum(range(100, 200)) / 100)
    assert points[0][1] == pytest.approx((sum(range(100)) - 5) / 99)  # NaN left out of the mean


def test_events_of_type_and_the_newest_id(store: JobStore) -> None:
    job = store.insert_job(TrainingJob(task="audio", dataset_path="/d"))
    store.history.append_events(job.id, [{"type": "step", "n": i} for i in range(50)])
    store.history.append_events(job.id, [{"type": "warning", "n": i} for i in range(5)])
    store.history.append_events(job.id, [{"type": "step", "n": 99}])
    warnings = store.history.events_of_type(job.id, ["warning"])
    assert [e["n"] for _, e in warnings] == [0, 1, 2, 3, 4]
    newest = store.history.events_of_type(
        job.id, ["warning", "status_change"], limit=2, newest=True
    )
    assert [e["n"] for _, e in newest] == [3, 4]  # the newest two, oldest first
    assert (
        store.history.last_event_id(job.id)
        == store.history.events_after(job.id, 0, limit=1000)[-1][0]
    )
    assert store.history.last_event_id("nosuchjob") == 0


def test_jobs_by_task(store: JobStore) -> None:
    a = store.insert_job(TrainingJob(task="audio", dataset_path="/d", dataset="x"))
    d = store.insert_job(TrainingJob(task="detect", dataset_path="/d", dataset="x"))
    assert [j.id for j in store.list_jobs(task="detect")] == [d.id]
    assert [j.id for j in store.list_jobs(task="audio", dataset="x")] == [a.id]
    assert store.count_jobs(task="audio") == 1
