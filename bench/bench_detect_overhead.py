"""Wrapper overhead: our ``detect`` task's ``train(ctx)`` against a raw ``YOLO(...).train(...)``.

Both run in this process with identical Ultralytics arguments on the same data, alternately,
``--repeats`` times each. Our wall time includes dataset inspection, the resolved copy, the
events and the result; the raw run gets the resolved data.yaml for free (Ultralytics cannot read
a ``path: .`` yaml itself). The ratio reported is ``raw / ours`` (target >= 0.97).

Child start-up (a fresh interpreter importing smalltrain's detect task and Ultralytics, as the
engine's process executor does) is measured separately.

Usage::

    python bench/bench_detect_overhead.py [--data DATA_YAML] [--epochs 3] [--imgsz 128]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _config_values(model: str, epochs: int, imgsz: int) -> dict[str, Any]:
    return {
        "base_model": model,
        "epochs": epochs,
        "batch_size": 8,
        "image_size": imgsz,
        "freeze_layers": 0,
        "workers": 0,
        "patience": 0,
    }


def _raw(model: str, data_yaml: Path, out: Path, args: dict[str, Any]) -> float:
    from ultralytics import YOLO

    from smalltrain.tasks.detect.callbacks import redirect_output

    t0 = time.perf_counter()
    with redirect_output(out / "raw.log"):
        YOLO(model).train(
            data=str(data_yaml), project=str(out), name="raw", exist_ok=True, plots=False, **args
        )
    return time.perf_counter() - t0


def _ours(config: Any, data: Path, run_dir: Path, home: Path) -> float:
    from smalltrain.engine.context import JobContext
    from smalltrain.tasks.detect import DetectTask

    events: list[Any] = []
    ctx = JobContext("bench", config, data, run_dir, emit=events.append, cache_dir=home / "cache")
    t0 = time.perf_counter()
    result = DetectTask().train(ctx)
    elapsed = time.perf_counter() - t0
    assert result.status == "completed", result.status
    return elapsed


def _child_startup() -> float:
    code = "import smalltrain.tasks.detect.task, ultralytics; from ultralytics import YOLO"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="default: synthetic shapes")
    parser.add_argument("--model", default=None, help="default: a tiny YOLOv8 yaml")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--imgsz", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from smalltrain.tasks.detect.synth import TINY_MODEL_YAML, make_shapes_dataset

    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        root = Path(tmp)
        home = root / "home"
        from smalltrain.tasks.detect import TrainingConfig, inspect_dataset, offline

        offline.apply(home)
        data = args.data or make_shapes_dataset(root / "shapes", n_train=48, n_val=16, size=128)
        model = args.model
        if model is None:
            (root / "tiny-yolov8n.yaml").write_text(TINY_MODEL_YAML)
            model = str(root / "tiny-yolov8n.yaml")
        config = TrainingConfig(**_config_values(model, args.epochs, args.imgsz))
        raw_args = config.ultralytics_args()
        raw_args["device"] = "cpu"
        data_yaml = inspect_dataset(data).build_resolved(root / "raw-dataset")
        _raw(model, data_yaml, root / "warm", {**raw_args, "epochs": 1})  # warm caches/imports
        ours: list[float] = []
        raw: list[float] = []
        for i in range(args.repeats):
            raw.append(_raw(model, data_yaml, root / f"raw{i}", raw_args))
            ours.append(_ours(config, data, root / f"ours{i}", home))
            print(f"repeat {i}: raw {raw[-1]:.2f} s, ours {ours[-1]:.2f} s", flush=True)
        startup = [_child_startup() for _ in range(3)]
    raw_m, ours_m = statistics.median(raw), statistics.median(ours)
    print(f"median raw {raw_m:.2f} s, ours {ours_m:.2f} s, ratio raw/ours {raw_m / ours_m:.3f}")
    print(f"child start-up (import task + ultralytics): {statistics.median(startup):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
