"""TrainingManager and its scheduler: queue, cancel, resume, recovery, registration, async.

Real SQLite, real child processes, no mocks, no fixed sleeps: tests wait on job state, on
events or on processes. The task is ``smalltrain.tasks.toy``, a minimal real task (a tiny
torch model with real checkpoints) used to test the engine in isolation from the audio and
detect tasks; the audio variants at the end run the real audio task on tiny synthetic sounds.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from smalltrain.engine.events import StepMetrics, TrainingStarted, WarningEvent
from smalltrain.engine.jobs import JobStatus, TrainingJob
from smalltrain.engine.resources import ResourceMonitor
from smalltrain.errors import (
    ConfigError,
    DatasetNotFound,
    InvalidName,
    NotResumable,
    SchedulerBusy,
)
from smalltrain.service.aio import AsyncTrainingManager
from smalltrain.service.execution.executors import read_pid_file
from smalltrain.service.manager import JobSpec, TrainingManager
from tests.support import audio as audiojob

TOY = {"task": "toy"}


pytestmark = pytest.mark.usefixtures("toy_task")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def _open(home: Path, **kw: Any) -> TrainingManager:
    kw.setdefault("autostart", False)
    return TrainingManager.open(home, **kw)


def _spec(data: Path, **overrides: Any) -> JobSpec:
    return JobSpec(dataset=data, task="toy", overrides=overrides)


def _steps(manager: TrainingManager, job_id: str) -> list[int]:
    return [s for s, _ in manager.jobs.history.metric_series(job_id, "train/loss")]


def _span(job: TrainingJob) -> tuple[float, float]:
    """When ``job`` started and finished (it must have done both)."""
    assert job.started_at is not None, job
    assert job.finished_at is not None, job
    return job.started_at, job.finished_at


# --- queue ------------------------------------------------------------------------------------


def test_queue_is_fifo_and_respects_max_concurrent(data: Path, home: Path) -> None:
    with _open(home, executor="inline", max_concurrent=2) as manager:
        ids = [manager.start_training(_spec(data, step_s=0.01, epochs=1)) for _ in range(5)]
        assert [j.status for j in manager.list_jobs()] == [JobStatus.QUEUED] * 5
        manager.run_scheduler(until_idle=True)
        jobs = [manager.get_job(i) for i in ids]
        assert all(j.status is JobStatus.COMPLETED for j in jobs)
        spans = [_span(j) for j in jobs]
        starts = [s for s, _ in spans]
        assert starts == sorted(starts)  # FIFO
        overlap = max(sum(1 for s, f in spans if s <= t < f) for t, _ in spans)
        assert overlap == 2


def test_cancel_of_a_queued_job_is_immediate(data: Path, home: Path) -> None:
    with _open(home, executor="inline") as manager:
        job_id = manager.start_training(_spec(data))
        job = manager.cancel(job_id)
        assert job.status is JobStatus.CANCELLED
        assert "before it started" in (job.status_reason or "")
        manager.run_scheduler(until_idle=True)
        assert manager.get_job(job_id).attempts == 0
        with pytest.raises(NotResumable, match="no valid checkpoint"):
            manager.resume(job_id)


def test_errors_come_before_anything_is_queued(data: Path, home: Path) -> None:
    with _open(home, executor="inline") as manager:
        with pytest.raises(DatasetNotFound, match="neither a registered dataset"):
            manager.start_training(JobSpec(dataset=home / "nope", task="toy"))
        with pytest.raises(ConfigError, match="epochs"):
            manager.start_training(_spec(data, epochs="many"))
        with pytest.raises(InvalidName, match="path separators"):
            manager.start_training(JobSpec(dataset=data, task="toy", model_name="../evil"))
        assert manager.list_jobs() == []


def test_a_constrained_machine_holds_the_queue(data: Path, home: Path) -> None:
    monitor = ResourceMonitor(ram_threshold=0.0)  # any RAM use counts as constrained
    with _open(home, executor="inline", resource_monitor=monitor) as manager:
        job_id = manager.start_training(_spec(data))
        assert manager.start_scheduler()
        deadline = time.monotonic() + 30
        while not (manager.get_job(job_id).status_reason or "").startswith("waiting: RAM"):
            assert time.monotonic() < deadline
            manager.hub.wait_change(0.05)
        assert manager.get_job(job_id).status is JobStatus.QUEUED
        monitor.ram_threshold = 1.0
        manager._kick()
        assert manager.wait(job_id, timeout=60).status is JobStatus.COMPLETED


def test_one_scheduler_per_home(home: Path) -> None:
    with _open(home, executor="inline") as first, _open(home, executor="inline") as second:
        assert first.start_scheduler()
        assert not second.start_scheduler()
        with pytest.raises(SchedulerBusy, match="another scheduler"):
            second.run_scheduler()
        assert second.scheduler_info() is not None


# --- process executor: cancel, kill, resume, registration -------------------------------------


def test_cancel_running_then_resume_registers_the_model(data: Path, home: Path) -> None:
    with _open(home) as manager:
        job_id = manager.start_training(_spec(data, epochs=3, step_s=0.05))
        with manager.subscribe(job_id) as events:
            assert manager.start_scheduler()
            for event in events:
                if isinstance(event, StepMetrics):
                    manager.cancel(job_id)
                    break
        job = manager.wait(job_id, timeout=120)
        assert job.status is JobStatus.CANCELLED
        assert job.checkpoint_path is not None
        assert Path(job.checkpoint_path).is_file()
        assert manager.resume(job_id) == job_id
        job = manager.wait(job_id, timeout=120)
        assert job.status is JobStatus.COMPLETED, job.status_reason
        assert job.attempts == 2
        assert _steps(manager, job_id) == list(range(12))  # no duplicates across attempts
        model = manager.get_model(job.model_name)
        assert model.job_id == job_id
        assert model.weights.is_file()
        assert model.active  # first model of its dataset
        assert job.artifacts["model"] == str(model.path)
        with pytest.raises(NotResumable, match="already completed"):
            manager.resume(job_id)


def test_kill_9_of_child_fails_clearly_queue_continues_and_resume_works(
    data: Path, home: Path
) -> None:
    with _open(home, grace_s=0.5) as manager:
        victim = manager.start_training(_spec(data, epochs=3, step_s=0.05))
        stubborn = manager.start_training(_spec(data, epochs=50, step_s=0.05, ignore_cancel=True))
        after = manager.start_training(_spec(data, epochs=1))
        events = manager.subscribe(victim)
        assert manager.start_scheduler()
        pid = 0
        for event in events:
            if isinstance(event, TrainingStarted):
                pid = int(event.info["pid"])
            if event.type == "checkpoint":
                os.kill(pid, signal.SIGKILL)
                break
        job = manager.wait(victim, timeout=120)
        assert job.status is JobStatus.FAILED
        assert "killed by signal 9 (SIGKILL)" in (job.error or "")
        assert job.status_reason == job.error
        # The stubborn job ignores the cancel: after the grace period it is killed.
        for event in manager.subscribe(stubborn):
            if isinstance(event, StepMetrics):
                manager.cancel(stubborn)
                break
        job = manager.wait(stubborn, timeout=120)
        assert job.status is JobStatus.CANCELLED
        assert "stopped with SIGTERM" in (job.status_reason or "")
        assert manager.wait(after, timeout=120).status is JobStatus.COMPLETED
        manager.resume(victim)
        job = manager.wait(victim, timeout=120)
        assert job.status is JobStatus.COMPLETED, job.status_reason
        assert job.attempts == 2


_WORKER = (
    "import sys; from smalltrain.service.manager import TrainingManager; "
    "TrainingManager.open(sys.argv[1], autostart=False).run_scheduler(until_idle=True)"
)


def test_kill_9_of_the_scheduler_interrupts_then_resume_finishes(data: Path, home: Path) -> None:
    with _open(home) as manager:
        job_id = manager.start_training(_spec(data, epochs=4, step_s=0.1))
        worker = subprocess.Popen([sys.executable, "-c", _WORKER, str(home)])
        try:
            for _, event in manager.follow(job_id, timeout=120):
                if event["type"] == "checkpoint":
                    break
        finally:
            worker.kill()  # SIGKILL: no cleanup at all
            worker.wait()
        run_dir = Path(manager.get_job(job_id).run_dir or "")
        assert (run_dir / "process.pid").is_file()  # the dead scheduler left its child's record
        assert manager.jobs.get_job(job_id).status is JobStatus.TRAINING  # as stored
        manager.run_scheduler(until_idle=True)  # recovery: waits for the orphan, settles the job
        assert read_pid_file(run_dir) is None  # the orphaned child is gone
        job = manager.get_job(job_id)
        assert job.status is JobStatus.INTERRUPTED
        assert "Resume it with" in (job.status_reason or "")
        manager.resume(job_id)
        manager.run_scheduler(until_idle=True)
        job = manager.get_job(job_id)
        assert job.status is JobStatus.COMPLETED, job.status_reason
        # No duplicates; a crash may lose the step rows of one unflushed batch (<= 0.5 s).
        steps = _steps(manager, job_id)
        assert steps == sorted(set(steps))
        assert steps[-1] == 15
        assert manager.get_model(job.model_name).job_id == job_id


def test_subscribe_from_another_process_sees_events(data: Path, home: Path) -> None:
    script = (
        "import sys, json; from smalltrain.service.manager import TrainingManager; "
        "m = TrainingManager.open(sys.argv[1], autostart=False); "
        "print(json.dumps([e.type for e in m.subscribe(sys.argv[2])]))"
    )
    with _open(home) as manager:
        job_id = manager.start_training(_spec(data, epochs=2, step_s=0.02))
        follower = subprocess.Popen(
            [sys.executable, "-c", script, str(home), job_id], stdout=subprocess.PIPE, text=True
        )
        manager.run_scheduler(until_idle=True)
        out, _ = follower.communicate(timeout=120)
    types = json.loads(out)
    assert types[0] == "training_started"
    assert types[-1] == "training_finished"
    assert {"step", "epoch", "checkpoint"} <= set(types)


def test_async_api_keeps_the_event_loop_responsive(data: Path, home: Path) -> None:
    """The loop keeps ticking while a job runs in the async API's calls. A call that blocked
    the loop would stop it for the job's whole run (a child start and 2 epochs: seconds); a
    busy machine delays single ticks (0.27 s once, with the suite's other worker busy), so
    the test reads the ticks' count and their worst gap against that, not a tight bound."""

    async def main() -> tuple[float, int, float]:
        started = time.monotonic()
        manager = AsyncTrainingManager(_open(home, autostart=True))
        lags: list[float] = []
        stop = asyncio.Event()

        async def ticker() -> None:
            while not stop.is_set():
                before = time.monotonic()
                await asyncio.sleep(0.01)
                lags.append(time.monotonic() - before - 0.01)

        tick = asyncio.create_task(ticker())
        job_id = await manager.start_training(_spec(data, epochs=2, step_s=0.05))
        seen = [event.type async for event in manager.subscribe(job_id)]
        job = await manager.wait(job_id)
        assert job.status is JobStatus.COMPLETED
        assert "step" in seen
        models = await manager.list_models()
        assert [m.name for m in models] == [job.model_name]
        await manager.set_active_model(job.model_name)
        assert (await manager.get_active_model(models[0].dataset)) is not None
        assert await manager.delete_model(job.model_name)
        stop.set()
        await tick
        await manager.close()
        return max(lags), len(lags), time.monotonic() - started

    worst, ticks, elapsed = asyncio.run(main())
    assert worst < 1.0, (worst, ticks, elapsed)
    assert ticks >= elapsed / 0.1, (worst, ticks, elapsed)  # on average a tick per 100 ms


def test_follow_waits_with_backoff_and_times_out(
    data: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _open(home, executor="inline") as manager:
        job_id = manager.start_training(_spec(data))
        polls: list[float] = []
        read = manager.jobs.history.events_after

        def counted(*args: Any, **kwargs: Any) -> Any:
            polls.append(time.monotonic())
            return read(*args, **kwargs)

        monkeypatch.setattr(manager.jobs.history, "events_after", counted)
        with pytest.raises(TimeoutError):
            list(manager.follow(job_id, timeout=2.0))  # queued, nobody runs it: only polls
        gaps = [b - a for a, b in zip(polls, polls[1:], strict=False)]
        # 20 ms growing 1.5x to 0.5 s: about 11 reads in 2 s, not the 100 of a fixed 20 ms poll
        assert 6 <= len(polls) <= 20, polls
        assert gaps[-1] > 4 * gaps[0]
        assert max(gaps) < 0.8  # capped (0.5 s plus scheduling slack)
        monkeypatch.undo()
        with pytest.raises(TimeoutError):
            manager.wait(job_id, timeout=0.1)
        thread = threading.Thread(target=manager.run_scheduler)
        thread.start()
        assert manager.wait(job_id, timeout=60).status is JobStatus.COMPLETED
        thread.join()


# --- the same engine paths with the real audio task ----------------------------------------------


@pytest.mark.slow
def test_audio_kill_9_of_the_scheduler_then_resume_registers_the_model(
    tmp_path: Path, home: Path
) -> None:
    sounds = audiojob.make_audio_dataset(tmp_path / "sounds")
    with _open(home) as manager:
        spec = JobSpec(dataset=sounds, preset="tiny", overrides=audiojob.AUDIO_TINY, device="cpu")
        job_id = manager.start_training(spec)
        worker = subprocess.Popen([sys.executable, "-c", _WORKER, str(home)])
        try:
            for _, event in manager.follow(job_id, timeout=300):
                if event["type"] == "checkpoint":
                    break
        finally:
            worker.kill()
            worker.wait()
        manager.run_scheduler(until_idle=True)
        assert manager.get_job(job_id).status is JobStatus.INTERRUPTED
        manager.resume(job_id)
        manager.run_scheduler(until_idle=True)
        job = manager.get_job(job_id)
        assert job.status is JobStatus.COMPLETED, job.status_reason
        model = manager.get_model(job.model_name)
        assert model.job_id == job_id
        assert model.task == "audio"
        assert model.headline_metric == "best_val_sc"  # the metric the best epoch is chosen by
        assert model.active
        assert model.dataset_snapshot.startswith("6 files")


def test_a_constrained_machine_warns_running_jobs(data: Path, home: Path) -> None:
    monitor = ResourceMonitor(ram_threshold=1.0)
    with _open(home, executor="inline", resource_monitor=monitor, resource_check_s=0.1) as m:
        job_id = m.start_training(_spec(data, epochs=1000, step_s=0.02))
        events = m.subscribe(job_id)
        assert m.start_scheduler()
        for event in events:
            if isinstance(event, StepMetrics):
                monitor.ram_threshold = 0.0  # from now on any RAM use counts as constrained
            if isinstance(event, WarningEvent) and event.code == "resources":
                assert "RAM" in event.message
                m.cancel(job_id)
                break
        assert m.wait(job_id, timeout=60).status is JobStatus.CANCELLED
        stored = [e for _, e in m.follow(job_id) if e["type"] == "warning"]
        assert stored[0]["code"] == "resources"


def test_enqueue_runs_a_job_planned_elsewhere(data: Path, home: Path) -> None:
    # the web UI plans (inspects, validates) in a child process and queues in the server
    from smalltrain.service.planning import plan_job

    with _open(home, executor="thread", autostart=True) as manager:
        job = plan_job(_spec(data, epochs=1), manager.datasets, manager.models, manager.home)
        assert manager.list_jobs() == []  # planning queues nothing
        job_id = manager.enqueue(job)
        assert manager.runs_scheduler  # the enqueue woke (here: started) the scheduler
        assert manager.wait(job_id, timeout=60).status is JobStatus.COMPLETED
