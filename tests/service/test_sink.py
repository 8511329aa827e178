"""``JobEventSink``: step metrics are written in batches, except the first step of an attempt,
which the user waits for (issue 26). A real SQLite job store."""

from __future__ import annotations

from pathlib import Path

from smalltrain.engine.events import StepMetrics, TrainingStarted
from smalltrain.engine.jobs import TrainingJob
from smalltrain.service.execution.sink import JobEventSink
from smalltrain.store import JobStore


def _step(i: int) -> StepMetrics:
    return StepMetrics(epoch=0, step=i, global_step=i, steps_per_epoch=10, metrics={"loss": 1.0})


def test_the_first_step_is_written_at_once_the_next_ones_in_batches(tmp_path: Path) -> None:
    with JobStore(tmp_path / "smalltrain.db") as store:
        job = store.insert_job(
            TrainingJob(task="toy", dataset_path=str(tmp_path), dataset="d", model_name="m")
        )
        sink = JobEventSink(store, job.id, lambda job_id, event: None, flush_s=3600)
        sink(TrainingStarted(total_epochs=1, steps_per_epoch=10))
        sink(_step(0))
        assert store.get_job(job.id).step == 1  # in the store before the second step
        sink(_step(1))
        sink(_step(2))
        assert store.get_job(job.id).step == 1  # batched: flush_s has not passed
        sink.flush()
        assert store.get_job(job.id).step == 3
