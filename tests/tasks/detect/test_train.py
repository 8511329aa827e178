"""DetectTask.train on tiny data: events, result, offline, read-only data, cancel and resume."""

from __future__ import annotations

import multiprocessing
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from smalltrain.engine.context import CancelMode, JobContext, TrainResult
from smalltrain.engine.events import (
    CheckpointSaved,
    EpochMetrics,
    Event,
    StepMetrics,
    TrainingFinished,
    TrainingStarted,
)
from smalltrain.errors import NotResumable, WeightsNotFound
from smalltrain.tasks.detect import DetectTask, TrainingConfig, check_resumable
from tests.tasks.detect.test_seen import check_seen_batches

_CONNECTS: list[Any] = []
_RECORDING = [False]


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _RECORDING[0] and event in ("socket.connect", "socket.getaddrinfo"):
        _CONNECTS.append((event, args[1:] if event == "socket.connect" else args[:1]))


sys.addaudithook(_audit)  # audit hooks cannot be removed; it only records while _RECORDING


def run(
    tmp_path: Path,
    data: Path,
    model_yaml: Path,
    on_event: Any = None,
    resume_from: Path | None = None,
    **overrides: Any,
) -> tuple[TrainResult, list[Event], JobContext]:
    values: dict[str, Any] = {
        "base_model": str(model_yaml),
        "epochs": 3,
        "batch_size": 4,
        "image_size": 64,
        "workers": 0,
        "freeze_layers": 0,
        **overrides,
    }
    events: list[Event] = []
    ctx = JobContext(
        "job",
        TrainingConfig(**values),
        data,
        tmp_path / "run",
        resume_from=resume_from,
        cache_dir=tmp_path / "home" / "cache",
    )

    def emit(event: Event) -> None:
        events.append(event)
        if on_event is not None:
            on_event(event, ctx)

    ctx.emit = emit
    return DetectTask().train(ctx), events, ctx


def test_tiny_training_run(tmp_path: Path, shapes: Path, tiny_model: Path) -> None:
    dataset = shapes.parent
    before = {p: p.stat().st_mtime for p in dataset.rglob("*")}
    for p in [*dataset.rglob("*"), dataset]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    _RECORDING[0] = True
    try:
        result, events, _ = run(tmp_path, shapes, tiny_model, close_mosaic=1)
    finally:
        _RECORDING[0] = False
        for p in [dataset, *dataset.rglob("*")]:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)
    inet = [c for c in _CONNECTS if not (c[0] == "socket.connect" and isinstance(c[1][0], str))]
    assert inet == [], f"network attempts during training: {inet}"
    _CONNECTS.clear()
    # read-only dataset: nothing new (no labels/*.cache) and nothing changed in the user's folder
    assert {p: p.stat().st_mtime for p in dataset.rglob("*")} == before
    assert result.status == "completed"
    assert result.epochs_completed == 3
    assert result.headline_metric == "best_map50_95"  # what picks best.pt: Ultralytics' fitness
    assert result.headline_value is not None
    assert result.weights is not None
    assert result.weights.is_file()
    ckpt = torch.load(result.weights, map_location="cpu", weights_only=False)
    assert ckpt["optimizer"] is None  # stripped for registration
    extra = result.extra
    assert extra["dataset_snapshot"] == "12 images, 2 classes"
    assert extra["base_model"] == str(tiny_model)
    assert extra["config_yaml"]["config"]["epochs"] == 3
    assert extra["config_yaml"]["ultralytics"]["optimizer"] == "AdamW"
    assert [row["epoch"] for row in extra["metrics"]["history"]] == [0, 1, 2]
    assert "final/mAP50" in extra["metrics"]["final"]
    assert set(extra["metrics"]["per_class"]) <= {"rect", "circle"}
    assert extra["metrics"]["per_class"]  # the final evaluation's per-class metrics
    for values in extra["metrics"]["per_class"].values():
        assert {"precision", "recall", "mAP50", "mAP50-95", "instances"} <= set(values)
    assert 0 <= result.metrics["best_epoch"] <= 2
    assert Path(result.artifacts["results_csv"]).is_file()
    assert (result.run_dir / "ultralytics.log").stat().st_size > 0
    assert (result.run_dir / "dataset" / "labels" / "train.cache").is_file()

    kinds = [type(e) for e in events]
    assert kinds[0] is TrainingStarted
    assert kinds[-1] is TrainingFinished
    steps = [e for e in events if isinstance(e, StepMetrics)]
    assert len(steps) == 6
    assert steps[-1].metrics["progress/total"] == pytest.approx(1.0)
    assert {"train/box_loss", "train/cls_loss", "train/dfl_loss"} <= set(steps[0].metrics)
    epochs = [e for e in events if isinstance(e, EpochMetrics)]
    assert [e.epoch for e in epochs] == [0, 1, 2]
    keys = set(epochs[0].metrics)
    assert {"val/mAP50", "val/mAP50-95", "metrics/precision", "metrics/recall"} <= keys
    assert {"metrics/fitness", "lr/pg0", "val/box_loss", "train/box_loss"} <= keys
    final = events[-1]
    assert isinstance(final, TrainingFinished)
    assert "final/mAP50" in final.metrics
    assert any(isinstance(e, CheckpointSaved) and e.reason == "best" for e in events)
    check_seen_batches(result.run_dir, events)


def test_no_console_output(tmp_path: Path, shapes: Path, tiny_model: Path, capfd: Any) -> None:
    run(tmp_path, shapes, tiny_model, epochs=1)
    out, err = capfd.readouterr()
    assert "Epoch" not in out + err
    assert "Ultralytics" not in out + err


def test_missing_official_weights_fail_before_training(tmp_path: Path, shapes: Path) -> None:
    with pytest.raises(WeightsNotFound, match="local .pt"):
        run(tmp_path, shapes, Path("yolo11n.pt"))


def _cancel_at(epoch: int, step: int, mode: CancelMode) -> Any:
    def on_event(event: Event, ctx: JobContext) -> None:
        if isinstance(event, StepMetrics) and (event.epoch, event.step) == (epoch, step):
            ctx.cancel.cancel("test", mode=mode)

    return on_event


# A cancel mid-epoch saves after that batch as of the previous epoch (a resume redoes the
# interrupted one); in epoch 0, which Ultralytics cannot restart, the partial epoch counts.
@pytest.mark.parametrize(
    ("mode", "at_epoch", "saved_epoch"), [("graceful", 2, 1), ("immediate", 0, 0)]
)
def test_cancel_then_resume(
    tmp_path: Path,
    shapes: Path,
    tiny_model: Path,
    mode: CancelMode,
    at_epoch: int,
    saved_epoch: int,
) -> None:
    result, events, _ = run(tmp_path, shapes, tiny_model, _cancel_at(at_epoch, 0, mode), epochs=4)
    assert result.status == "cancelled"
    assert result.weights is None
    assert result.last_checkpoint is not None
    assert check_resumable(result.last_checkpoint) == saved_epoch
    ckpt = torch.load(result.last_checkpoint, map_location="cpu", weights_only=False)
    assert ckpt["optimizer"] is not None
    assert ckpt["epoch"] == saved_epoch
    assert result.epochs_completed == saved_epoch + 1
    steps = [e for e in events if isinstance(e, StepMetrics)]
    assert (steps[-1].epoch, steps[-1].step) == (at_epoch, 0)  # stopped right after that batch
    assert multiprocessing.active_children() == []
    saved = [e for e in events if isinstance(e, CheckpointSaved) and e.reason == "cancel"]
    assert [e.path for e in saved] == [str(result.last_checkpoint)]
    reported = [e.epoch for e in events if isinstance(e, EpochMetrics)]
    assert reported == list(range(at_epoch))  # the epochs validated before the cancel

    resumed, events2, _ = run(
        tmp_path, shapes, tiny_model, resume_from=result.last_checkpoint, epochs=4
    )
    started = next(e for e in events2 if isinstance(e, TrainingStarted))
    assert started.start_epoch == saved_epoch + 1
    assert started.info["optimizer_state_tensors"] > 0  # optimizer state came back
    assert resumed.status == "completed"
    assert resumed.epochs_completed == 4
    epochs = [e.epoch for e in events2 if isinstance(e, EpochMetrics)]
    assert epochs == list(range(saved_epoch + 1, 4))
    assert resumed.weights is not None


def test_cancel_before_training_starts(tmp_path: Path, shapes: Path, tiny_model: Path) -> None:
    def on_event(event: Event, ctx: JobContext) -> None:
        if isinstance(event, TrainingStarted):  # after Ultralytics' setup reset trainer.stop
            ctx.cancel.cancel("early")

    result, events, _ = run(tmp_path, shapes, tiny_model, on_event)
    assert result.status == "cancelled"
    assert result.epochs_completed == 0
    assert not any(isinstance(e, StepMetrics) for e in events)


def test_cancel_requested_before_train_is_called(
    tmp_path: Path, shapes: Path, tiny_model: Path
) -> None:
    ctx = JobContext("job", TrainingConfig(base_model=str(tiny_model)), shapes, tmp_path / "r")
    ctx.cancel.cancel()
    ctx.cache_dir = tmp_path / "home" / "cache"
    assert DetectTask().train(ctx).status == "cancelled"


def test_resume_refused_for_a_finished_run(tmp_path: Path, shapes: Path, tiny_model: Path) -> None:
    result, _, _ = run(tmp_path, shapes, tiny_model, epochs=1)
    assert result.last_checkpoint is not None
    with pytest.raises(NotResumable, match="already finished"):
        check_resumable(result.last_checkpoint)
    with pytest.raises(NotResumable, match="already finished"):
        run(tmp_path, shapes, tiny_model, resume_from=result.last_checkpoint, epochs=1)
    with pytest.raises(NotResumable, match="no such checkpoint"):
        check_resumable(tmp_path / "nope.pt")
    assert os.environ["YOLO_OFFLINE"] == "1"


def test_audit_hook_sees_connect_attempts() -> None:
    import socket

    _RECORDING[0] = True
    try:
        with socket.socket() as s:
            s.settimeout(0.5)
            with pytest.raises((ConnectionRefusedError, TimeoutError)):
                s.connect(("127.0.0.1", 9))
    finally:
        _RECORDING[0] = False
    assert any(c[0] == "socket.connect" and c[1][0] == ("127.0.0.1", 9) for c in _CONNECTS)
    _CONNECTS.clear()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_run_respects_memory_cap(tmp_path: Path, shapes: Path, tiny_model: Path) -> None:
    result, _, _ = run(tmp_path, shapes, tiny_model, epochs=1, device="cuda:0")
    assert result.status == "completed"
    total = torch.cuda.get_device_properties(0).total_memory
    assert torch.cuda.max_memory_reserved(0) <= 0.8 * total


@pytest.mark.parametrize("mode", ["graceful", "immediate"])
def test_cancel_in_the_final_epoch_is_cancelled_and_resumable(
    tmp_path: Path, shapes: Path, tiny_model: Path, mode: CancelMode
) -> None:
    result, _, _ = run(tmp_path, shapes, tiny_model, _cancel_at(1, 0, mode), epochs=2)
    assert result.status == "cancelled"  # never "completed" with a registered model
    assert result.weights is None
    assert result.last_checkpoint is not None
    assert check_resumable(result.last_checkpoint) == 0  # the final epoch will be redone


def test_continue_training_for_more_epochs(tmp_path: Path, shapes: Path, tiny_model: Path) -> None:
    first, _, _ = run(tmp_path / "a", shapes, tiny_model, epochs=1)
    assert first.weights is not None
    previous = TrainingConfig(base_model=str(tiny_model), epochs=1, batch_size=4, image_size=64)
    config = DetectTask().continue_config(previous, first.weights, 2, freeze_layers=0)
    ctx = JobContext("job2", config, shapes, tmp_path / "b", cache_dir=tmp_path / "home" / "cache")
    result = DetectTask().train(ctx)
    assert result.status == "completed"
    assert result.epochs_completed == 2
    assert result.extra["base_model"] == str(first.weights.resolve())


def test_misspelt_ultralytics_hook_is_rejected() -> None:
    from smalltrain.tasks.detect.callbacks import add_hook

    with pytest.raises(ValueError, match="unknown Ultralytics callback 'on_train_epoch_ends'"):
        add_hook(object(), "on_train_epoch_ends", print)
