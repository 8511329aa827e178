"""Executors: inline, thread and process run the same task code and end the same ways.

The task here is ``smalltrain.tasks.toy``, a minimal real task (a tiny torch model with
real checkpoints) used to test the engine in isolation from the audio and detect tasks. Process
tests start real ``spawn`` children; nothing is mocked and nothing sleeps to wait.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from smalltrain.engine.checkpoints import find_resumable
from smalltrain.engine.context import CancelToken, ResourceLimits, TrainResult
from smalltrain.engine.events import (
    Event,
    StepMetrics,
    TrainingFinished,
    TrainingStarted,
)
from smalltrain.service.execution.executors import (
    AttemptOutcome,
    AttemptSpec,
    Executor,
    ProcessExecutor,
    describe_exit,
    make_executor,
    register_extra_tasks,
)
from smalltrain.service.execution.threads import JOB_NICE_ENV, job_nice
from smalltrain.tasks import toy as toytask

pytestmark = pytest.mark.usefixtures("toy_task")


def _spec(tmp_path: Path, **overrides: Any) -> AttemptSpec:
    data = tmp_path / "data"
    data.mkdir(parents=True, exist_ok=True)
    config = toytask.ToyConfig(**overrides).to_dict()
    return AttemptSpec(
        job_id="job1", task="toy", config=config, dataset_path=data, run_dir=tmp_path / "run"
    )


class Recorder:
    """Collects events; optionally acts on the first step event (cancel, kill)."""

    def __init__(self, on_first_step: Any = None) -> None:
        self.events: list[Event] = []
        self.pid: int | None = None
        self.on_first_step = on_first_step

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        if isinstance(event, TrainingStarted):
            self.pid = int(event.info.get("pid", 0))
        if isinstance(event, StepMetrics) and self.on_first_step is not None:
            action, self.on_first_step = self.on_first_step, None
            action(self)

    def types(self) -> list[str]:
        return [e.type for e in self.events]


@pytest.mark.parametrize("kind", ["inline", "thread", "process"])
def test_every_executor_completes_the_same_job(tmp_path: Path, kind: str) -> None:
    rec = Recorder()
    outcome = make_executor(kind).execute(_spec(tmp_path), rec, CancelToken())
    assert outcome.status == "completed", outcome.error
    assert isinstance(outcome.result, TrainResult)
    assert outcome.result.weights is not None
    assert outcome.result.weights.is_file()
    assert outcome.result.epochs_completed == 2
    assert rec.types().count("step") == 8
    assert rec.types()[0] == "training_started"
    assert rec.types()[-1] == "training_finished"
    if kind == "process":
        assert rec.pid != os.getpid()
        assert outcome.startup_s is not None
        assert outcome.startup_s > 0
        assert outcome.exit_code == 0


@pytest.mark.parametrize("kind", ["inline", "thread", "process"])
def test_cancel_checkpoints_and_resume_finishes(tmp_path: Path, kind: str) -> None:
    executor: Executor = make_executor(kind)
    token = CancelToken()
    rec = Recorder(on_first_step=lambda r: token.cancel("test cancel"))
    spec = _spec(tmp_path, epochs=3, step_s=0.05)
    outcome = executor.execute(spec, rec, token)
    assert outcome.status == "cancelled", outcome.error
    found = find_resumable(spec.run_dir / "checkpoints")
    assert found is not None
    path, state = found
    assert state["global_step"] >= 1
    again = make_executor("inline").execute(
        AttemptSpec(**{**spec.__dict__, "resume_from": path}), Recorder(), CancelToken()
    )
    assert again.status == "completed"
    assert again.result is not None
    assert again.result.global_step == 3 * 4


def test_grace_period_kills_a_child_that_ignores_cancel(tmp_path: Path) -> None:
    token = CancelToken()
    rec = Recorder(on_first_step=lambda r: token.cancel("test cancel"))
    executor = ProcessExecutor(grace_s=0.3, term_s=1.0)
    outcome = executor.execute(
        _spec(tmp_path, epochs=1000, step_s=0.05, ignore_cancel=True), rec, token
    )
    assert outcome.status == "cancelled"
    assert outcome.error is not None
    assert "SIGTERM" in outcome.error
    assert outcome.exit_code == -signal.SIGTERM
    assert "training_finished" not in rec.types()


def test_kill_9_of_the_child_fails_with_the_signal_in_words(tmp_path: Path) -> None:
    rec = Recorder(on_first_step=lambda r: os.kill(r.pid, signal.SIGKILL))
    outcome = ProcessExecutor().execute(
        _spec(tmp_path, epochs=1000, step_s=0.05), rec, CancelToken()
    )
    assert outcome.status == "failed"
    assert outcome.exit_code == -9
    assert outcome.error is not None
    assert "killed by signal 9 (SIGKILL)" in outcome.error
    assert "out of memory" in outcome.error


def test_child_exit_code_and_exception_are_reported(tmp_path: Path) -> None:
    executor = ProcessExecutor()
    died = executor.execute(_spec(tmp_path, exit_at_step=2), Recorder(), CancelToken())
    assert died.status == "failed"
    assert died.exit_code == 3
    assert died.error == "the training process exited with code 3 without reporting a result"
    raised = executor.execute(_spec(tmp_path, raise_at_step=1), Recorder(), CancelToken())
    assert raised.status == "failed"
    assert raised.error == "RuntimeError: toy task failure at step 1"
    assert raised.traceback is not None
    assert "toy.py" in raised.traceback


def test_unknown_task_is_a_failed_outcome_not_an_exception(tmp_path: Path) -> None:
    spec = AttemptSpec(
        job_id="j", task="nope", config={}, dataset_path=tmp_path, run_dir=tmp_path / "r"
    )
    outcome = make_executor("inline").execute(spec, Recorder(), CancelToken())
    assert outcome.status == "failed"
    assert outcome.error is not None
    assert "unknown task 'nope'" in outcome.error


def test_outcome_round_trips_through_plain_values(tmp_path: Path) -> None:
    result = TrainResult("completed", 2, 8, tmp_path, None, tmp_path / "c.pt", tmp_path / "w.pt")
    outcome = AttemptOutcome("completed", result=result, exit_code=0)
    assert AttemptOutcome.from_dict(outcome.to_dict()) == outcome
    assert TrainingFinished.type == "training_finished"


def test_describe_exit_and_bad_settings() -> None:
    assert describe_exit(3).endswith("exited with code 3 without reporting a result")
    assert "signal 15 (SIGTERM)" in describe_exit(-15)
    assert "out of memory" not in describe_exit(-15)
    with pytest.raises(ValueError, match="unknown executor"):
        make_executor("kubernetes")
    with pytest.raises(ValueError, match="name=module:Factory"):
        register_extra_tasks("broken")


def test_a_slow_step_still_finishes_and_checkpoints_after_a_cancel(tmp_path: Path) -> None:
    """A machine slower than the grace period: the child gets time for its step and the save
    (the grace grows with the slowest step seen) instead of being killed without a checkpoint."""
    token = CancelToken()
    events: list[Event] = []

    def on_event(event: Event) -> None:
        events.append(event)
        if isinstance(event, StepMetrics) and event.global_step == 1:  # two steps timed
            token.cancel("test", "graceful")

    executor = ProcessExecutor(grace_s=0.3, term_s=1.0)
    spec = _spec(tmp_path, epochs=50, steps_per_epoch=4, step_s=1.0, busy_steps=True)
    outcome = executor.execute(spec, on_event, token)
    assert outcome.status == "cancelled"
    assert outcome.error is None, outcome.error  # not "did not stop within ... SIGTERM"
    assert outcome.result is not None
    assert outcome.result.last_checkpoint is not None
    assert find_resumable(tmp_path / "run" / "checkpoints") is not None


def test_the_thread_executor_hands_the_task_what_the_process_executor_does(
    tmp_path: Path,
) -> None:
    """Every executor ends in ``run_task``: the thread executor passes the job's limits and
    cache folder, and turns a GPU out-of-memory error into our error, exactly as the process
    executor does. The out-of-memory error is a fake (the toy task's ``fake_oom_at_step``
    raises torch's own ``OutOfMemoryError`` text on the CPU), so this runs without a GPU;
    tests/service/test_gpu_memory.py has the real one on a machine with a GPU."""
    limits = ResourceLimits(max_gpu_memory_percent=0.5, cpu_threads=1)
    seen: dict[str, tuple[Any, Any]] = {}
    for kind in ("thread", "process"):
        rec = Recorder()
        spec = _spec(tmp_path / kind, epochs=1, fake_oom_at_step=1)
        spec = AttemptSpec(**{**spec.__dict__, "limits": limits, "cache_dir": tmp_path / "c"})
        oom = make_executor(kind).execute(spec, rec, CancelToken())
        [started] = [e for e in rec.events if isinstance(e, TrainingStarted)]
        seen[kind] = (started.info["limits"], started.info["cache_dir"])
        assert oom.status == "failed"
        assert oom.traceback is None  # the words say it all
        assert oom.error is not None
        assert oom.error.startswith("GpuOutOfMemory: the job ran out of GPU memory"), oom.error
        assert "under its cap max_gpu_memory_percent=0.5" in oom.error
        assert "it asked for 30.00 GiB more" in oom.error
        assert "toy task: a fake" not in oom.error  # not torch's page of allocator details
    expected = ({"max_gpu_memory_percent": 0.5, "cpu_threads": 1}, str(tmp_path / "c"))
    assert seen["thread"] == seen["process"] == expected


def test_job_processes_run_nice_by_default_and_the_setting_is_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(JOB_NICE_ENV, raising=False)
    assert job_nice() == 10
    assert ProcessExecutor().nice == 10
    monkeypatch.setenv(JOB_NICE_ENV, "0")  # off: jobs at the scheduler's priority
    assert ProcessExecutor().nice == 0
    for bad in ("-5", "20", "low"):
        monkeypatch.setenv(JOB_NICE_ENV, bad)
        with pytest.raises(ValueError, match=f"{JOB_NICE_ENV}='{bad}': give a whole number"):
            job_nice()


def test_a_status_line_drops_the_class_of_an_error_written_for_the_user() -> None:
    """The job's error keeps ``Type: message`` (``failed_on_config`` reads the type); its status
    line shows our own errors' messages alone, and any other error with its type."""
    from smalltrain.service.execution.attempt import reason_of

    error = "WeightsNotFound: base_model 'gone.pt' is not on disk; give a local .pt"
    assert reason_of(error) == "base_model 'gone.pt' is not on disk; give a local .pt"
    assert reason_of("GpuOutOfMemory: the job ran out") == "the job ran out"
    assert reason_of("RuntimeError: toy task failure") == "RuntimeError: toy task failure"
    assert reason_of("os.error: x") == "os.error: x"
    assert reason_of("DatasetError") == "DatasetError"  # no message: the type is all there is
    assert reason_of("killed by signal 9 (SIGKILL): out of memory?") == (
        "killed by signal 9 (SIGKILL): out of memory?"
    )
    assert reason_of(None) is None
