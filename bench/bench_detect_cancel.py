"""Cancel latency (cancel -> resumable last.pt) and resume correctness for the detect task.

A cancel is requested from the event stream in the middle of an epoch (epoch 1, batch 1), in
graceful and in immediate mode. We report:

- the time from ``cancel()`` to the CheckpointSaved event of a resumable last.pt, and to
  ``train`` returning;
- whether last.pt has optimizer state and epoch >= 0 (``check_resumable``);
- that the resumed run starts at the next epoch with optimizer state loaded and completes.

Usage::

    python bench/bench_detect_cancel.py [--data DATA_YAML] [--imgsz 128] [--epochs 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _run(config: Any, data: Path, run_dir: Path, home: Path, mode: str | None, resume: Any) -> dict:
    from smalltrain.engine.context import JobContext
    from smalltrain.engine.events import CheckpointSaved, Event, StepMetrics, TrainingStarted
    from smalltrain.tasks.detect import DetectTask

    marks: dict[str, Any] = {}

    def emit(event: Event) -> None:
        if mode and isinstance(event, StepMetrics) and (event.epoch, event.step) == (1, 1):
            marks["cancel"] = time.perf_counter()
            ctx.cancel.cancel("bench", mode=mode)
        elif isinstance(event, CheckpointSaved) and "cancel" in marks and "saved" not in marks:
            marks["saved"] = time.perf_counter()
        elif isinstance(event, TrainingStarted):
            marks["started"] = event

    ctx = JobContext(
        "bench", config, data, run_dir, emit=emit, resume_from=resume, cache_dir=home / "cache"
    )
    result = DetectTask().train(ctx)
    marks["returned"] = time.perf_counter()
    marks["result"] = result
    return marks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="default: synthetic shapes")
    parser.add_argument("--model", default=None, help="default: a tiny YOLOv8 yaml")
    parser.add_argument("--imgsz", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args(argv)
    from smalltrain.tasks.detect import TrainingConfig, check_resumable, offline
    from smalltrain.tasks.detect.synth import TINY_MODEL_YAML, make_shapes_dataset

    with tempfile.TemporaryDirectory(prefix="bench-cancel-") as tmp:
        root = Path(tmp)
        home = root / "home"
        offline.apply(home)
        data = args.data or make_shapes_dataset(root / "shapes", n_train=48, n_val=16, size=128)
        model = args.model
        if model is None:
            (root / "tiny-yolov8n.yaml").write_text(TINY_MODEL_YAML)
            model = str(root / "tiny-yolov8n.yaml")
        config = TrainingConfig(
            base_model=model,
            epochs=args.epochs,
            batch_size=8,
            image_size=args.imgsz,
            freeze_layers=0,
            workers=0,
        )
        for mode in ("graceful", "immediate"):
            run_dir = root / mode
            marks = _run(config, data, run_dir, home, mode, None)
            result = marks["result"]
            last = result.last_checkpoint
            epoch = check_resumable(last)
            to_ckpt = marks.get("saved", float("nan")) - marks["cancel"]
            to_return = marks["returned"] - marks["cancel"]
            print(
                f"{mode:9s}: cancel -> resumable last.pt {to_ckpt:.3f} s, -> train returns "
                f"{to_return:.3f} s; last.pt epoch {epoch}, status {result.status}",
                flush=True,
            )
            resumed = _run(config, data, run_dir, home, None, last)
            started = resumed["started"]
            print(
                f"{'':9s}  resume: start_epoch {started.start_epoch} (expected {epoch + 1}), "
                f"optimizer state tensors {started.info['optimizer_state_tensors']}, "
                f"status {resumed['result'].status}, epochs {resumed['result'].epochs_completed}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
