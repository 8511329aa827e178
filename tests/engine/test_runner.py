"""TrainingRunner: start/wait, failures, cancel latency, resume, events log.

The runner is tested in isolation with ``TinyLinearTask``: a minimal but real task (it trains a
small torch linear regression, checks ``ctx.cancel`` every step, checkpoints with
``save_checkpoint`` on cancel and at the end, and resumes exactly from ``ctx.resume_from``). The
audio task is tested on its own elsewhere; nothing here is mocked.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from smalltrain.engine.checkpoints import (
    capture_rng_state,
    list_checkpoints,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from smalltrain.engine.context import (
    JobContext,
    ResultStatus,
    ResumePoint,
    TrainResult,
    checkpoint_resume_point,
)
from smalltrain.engine.events import (
    CheckpointSaved,
    Event,
    LogEvent,
    StepMetrics,
    TrainingFinished,
    TrainingStarted,
    event_from_dict,
)
from smalltrain.engine.runner import EVENTS_FILE, TrainingRunner
from smalltrain.errors import NotResumable, SmallTrainError

TRUE_W = torch.tensor([[1.0, -2.0, 3.0, 0.5]])


@dataclass(frozen=True)
class TinyConfig:
    max_steps: int = 200
    steps_per_epoch: int = 50
    lr: float = 0.05
    seed: int = 0
    fail_at_step: int | None = None


class TinyLinearTask:
    """A minimal real Task: linear regression on fresh random batches drawn each step."""

    name = "tiny-linear"

    def inspect(self, path: Path) -> Any:
        raise NotImplementedError("the runner never calls inspect")

    def adaptive_config(self, report: Any, device: str, preset: str = "auto", **kw: Any) -> Any:
        return TinyConfig(**kw)

    def config_from_dict(self, data: Any) -> Any:
        return TinyConfig(**data)

    def resume_point(self, run_dir: Path) -> ResumePoint:
        return checkpoint_resume_point(run_dir)

    def field_help(self) -> dict[str, str]:
        return {}

    def train(self, ctx: JobContext) -> TrainResult:
        cfg: TinyConfig = ctx.config
        torch.manual_seed(cfg.seed)
        model = torch.nn.Linear(4, 1)
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr)
        start = 0
        if ctx.resume_from is not None:
            state = load_checkpoint(ctx.resume_from)
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            restore_rng_state(state["rng"])
            start = state["global_step"]
        ctx.emit(
            TrainingStarted(
                total_epochs=cfg.max_steps // cfg.steps_per_epoch,
                steps_per_epoch=cfg.steps_per_epoch,
                start_step=start,
                resumed_from=str(ctx.resume_from) if ctx.resume_from else None,
            )
        )
        loss = torch.tensor(0.0)
        for global_step in range(start, cfg.max_steps):
            if ctx.cancel:
                return self._finish(ctx, model, opt, global_step, loss, "cancelled")
            x = torch.randn(16, 4)
            loss = torch.nn.functional.mse_loss(model(x), x @ TRUE_W.T)
            opt.zero_grad()
            loss.backward()
            opt.step()
            ctx.emit(
                StepMetrics(
                    epoch=global_step // cfg.steps_per_epoch,
                    step=global_step % cfg.steps_per_epoch,
                    global_step=global_step + 1,
                    steps_per_epoch=cfg.steps_per_epoch,
                    metrics={"train/loss": loss.item()},
                )
            )
            if cfg.fail_at_step == global_step + 1:
                raise RuntimeError(f"boom at step {global_step + 1}")
        return self._finish(ctx, model, opt, cfg.max_steps, loss, "completed")

    def _finish(
        self,
        ctx: JobContext,
        model: torch.nn.Module,
        opt: torch.optim.Optimizer,
        global_step: int,
        loss: torch.Tensor,
        status: ResultStatus,
    ) -> TrainResult:
        epoch = global_step // ctx.config.steps_per_epoch
        reason = "cancel" if status == "cancelled" else "final"
        state = {"model": model.state_dict(), "optimizer": opt.state_dict()}
        state["rng"] = capture_rng_state()
        path = save_checkpoint(
            ctx.run_dir / "checkpoints",
            state,
            epoch=epoch,
            global_step=global_step,
            metrics={"train/loss": loss.item()},
            reason=reason,
        )
        ctx.emit(
            CheckpointSaved(path=str(path), epoch=epoch, global_step=global_step, reason=reason)
        )
        ctx.emit(TrainingFinished(status=status, epochs_completed=epoch, global_step=global_step))
        return TrainResult(
            status=status,
            epochs_completed=epoch,
            global_step=global_step,
            run_dir=ctx.run_dir,
            best_checkpoint=None,
            last_checkpoint=path,
            weights=None,
            metrics={"train/loss": loss.item()},
        )


def _runner(
    tmp_path: Path, subscribers: tuple[Callable[[Event], None], ...] = (), **cfg: Any
) -> TrainingRunner:
    return TrainingRunner(
        TinyLinearTask(),
        TinyConfig(**cfg),
        tmp_path / "data",
        tmp_path / "run",
        job_id="job1",
        subscribers=subscribers,
    )


def _final_weight(result: TrainResult) -> torch.Tensor:
    assert result.last_checkpoint is not None
    weight: torch.Tensor = load_checkpoint(result.last_checkpoint)["model"]["weight"]
    return weight


def test_start_wait_returns_result_and_logs_events(tmp_path: Path) -> None:
    seen: list[Event] = []
    runner = _runner(tmp_path, (seen.append,), max_steps=60)
    assert runner.status == "idle"
    runner.start()
    result = runner.wait(timeout=60)
    assert result is not None
    assert (result.status, result.global_step) == ("completed", 60)
    assert runner.status == "completed"
    assert not runner.is_running()
    assert runner.error is None
    assert len(runner.history.steps) == 60
    assert isinstance(seen[0], TrainingStarted)
    assert isinstance(seen[-1], TrainingFinished)
    lines = (tmp_path / "run" / EVENTS_FILE).read_text().splitlines()
    assert [event_from_dict(json.loads(line)) for line in lines] == seen


def test_task_exception_is_captured_not_raised(tmp_path: Path) -> None:
    seen: list[Event] = []
    runner = _runner(tmp_path, (seen.append,), fail_at_step=5)
    runner.start()
    assert runner.wait(timeout=60) is None
    assert runner.status == "failed"
    assert isinstance(runner.error, RuntimeError)
    assert runner.error_traceback is not None
    assert "boom at step 5" in runner.error_traceback
    errors = [e for e in seen if isinstance(e, LogEvent) and e.level == "error"]
    assert len(errors) == 1
    assert "RuntimeError: boom at step 5" in errors[0].message
    assert "boom at step 5" in (tmp_path / "run" / EVENTS_FILE).read_text()


def test_failing_subscriber_does_not_stop_training(tmp_path: Path) -> None:
    def broken(event: Event) -> None:
        raise ValueError("a buggy progress bar")

    runner = _runner(tmp_path, (broken,), max_steps=10)
    runner.start()
    result = runner.wait(timeout=60)
    assert result is not None
    assert result.status == "completed"


def test_cancel_returns_within_about_one_step(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    """Cancel an endless run mid-training; record how long it took to stop and checkpoint."""
    reached = threading.Event()
    last_step = [0]

    def watch(event: Event) -> None:
        if isinstance(event, StepMetrics):
            last_step[0] = event.global_step
            if event.global_step >= 20:
                reached.set()

    runner = _runner(tmp_path, (watch,), max_steps=10**9)
    runner.start()
    assert reached.wait(timeout=60)
    step_at_cancel = last_step[0]
    assert runner.cancel(reason="test", timeout=30) is True
    latency = runner.cancel_latency
    assert latency is not None
    checkpoint_latency = runner.cancel_checkpoint_latency
    assert checkpoint_latency is not None
    # Recorded: printed under pytest -s, and as junit-xml properties.
    record_property("cancel_latency_s", latency)
    record_property("cancel_checkpoint_latency_s", checkpoint_latency)
    print(f"cancel latency {latency * 1e3:.2f} ms, checkpoint at {checkpoint_latency * 1e3:.2f} ms")
    assert latency < 2.0
    assert checkpoint_latency <= latency

    result = runner.wait()
    assert result is not None
    assert runner.status == "cancelled"
    assert result.global_step - step_at_cancel <= 1  # at most the step in flight finished
    [info] = list_checkpoints(tmp_path / "run" / "checkpoints")
    assert (info.global_step, info.reason) == (result.global_step, "cancel")
    assert runner.cancel_token.reason == "test"


def test_start_twice_raises(tmp_path: Path) -> None:
    started = threading.Event()
    runner = _runner(tmp_path, (lambda e: started.set(),), max_steps=10**9)
    runner.start()
    try:
        assert started.wait(timeout=60)
        with pytest.raises(SmallTrainError, match="job1 is already running"):
            runner.start()
        with pytest.raises(SmallTrainError, match="already running"):
            runner.resume()
    finally:
        assert runner.cancel(timeout=30)
    assert runner.status == "cancelled"


def test_resume_continues_exactly_from_the_checkpoint(tmp_path: Path) -> None:
    full = _runner(tmp_path / "full", max_steps=120)
    full.start()
    reference = full.wait(timeout=60)
    assert reference is not None

    holder: list[TrainingRunner] = []
    resumed_steps: list[int] = []

    def cancel_at_37(event: Event) -> None:
        if isinstance(event, StepMetrics) and event.global_step == 37:
            holder[0].cancel()  # from the worker thread itself: must not deadlock

    runner = _runner(tmp_path, (cancel_at_37,), max_steps=120)
    holder.append(runner)
    with pytest.raises(NotResumable, match="no valid checkpoint"):
        runner.resume()
    runner.start()
    first = runner.wait(timeout=60)
    assert first is not None
    assert (first.status, first.global_step) == ("cancelled", 37)

    runner.history.subscribe(
        lambda e: resumed_steps.append(e.global_step) if isinstance(e, StepMetrics) else None
    )
    runner.resume()
    assert runner.resumed_from == first.last_checkpoint
    second = runner.wait(timeout=60)
    assert second is not None
    assert (second.status, second.global_step) == ("completed", 120)
    assert resumed_steps[0] == 38
    lines = (tmp_path / "run" / EVENTS_FILE).read_text().splitlines()
    assert sum('"training_started"' in line for line in lines) == 2  # both attempts, appended
    assert torch.equal(_final_weight(second), _final_weight(reference))


def test_resume_from_bad_explicit_checkpoint(tmp_path: Path) -> None:
    runner = _runner(tmp_path)
    with pytest.raises(NotResumable, match="does not exist"):
        runner.resume(tmp_path / "nope.pt")
    assert runner.cancel() is True  # nothing running: already stopped
    assert runner.wait() is None


class ReturnsNothingTask(TinyLinearTask):
    def train(self, ctx: JobContext) -> TrainResult:
        return None  # type: ignore[return-value]


def test_task_returning_no_result_fails_clearly(tmp_path: Path) -> None:
    runner = TrainingRunner(ReturnsNothingTask(), TinyConfig(), tmp_path, tmp_path / "run")
    runner.start()
    assert runner.wait(timeout=60) is None
    assert runner.status == "failed"
    assert "ReturnsNothingTask.train returned NoneType, not a TrainResult" in str(runner.error)
