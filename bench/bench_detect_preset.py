"""Auto preset against Ultralytics' defaults on BCCD, at the same epoch budget and image size.

For each start (from scratch and from the shared pretrained .pt) it trains twice:

- "ultralytics": raw ``YOLO(model).train(data, epochs, imgsz)`` with every other argument at
  Ultralytics' defaults (``optimizer='auto'``, ``nbs=64``, batch 16, ``close_mosaic=10``...);
- "auto": our ``DetectTask.train`` with ``adaptive_config(preset="auto", epochs=..,
  image_size=..)``,

and reports val mAP50 / mAP50-95 of each run's best.pt (Ultralytics' final evaluation).

Usage::

    python bench/bench_detect_preset.py --epochs 10 --imgsz 320 [--only pretrained|scratch]

CPU runs are slow; on this project's CPU machines 10 epochs at 320 px is what fits.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared" / "data"
BCCD = SHARED / "detection" / "bccd"
PRETRAINED = SHARED / "weights" / "yolov8s_fall_detection.pt"


def _raw(
    model: str, data_yaml: Path, out: Path, epochs: int, imgsz: int, device: str, seed: int
) -> dict:
    from ultralytics import YOLO

    from smalltrain.tasks.detect.callbacks import normalise_metrics, redirect_output

    t0 = time.perf_counter()
    with redirect_output(out / "raw.log"):
        metrics = YOLO(model).train(
            data=str(data_yaml),
            epochs=epochs,
            imgsz=imgsz,
            device=device,
            project=str(out),
            name="raw",
            exist_ok=True,
            plots=False,
            workers=0,
            seed=seed,
        )
    values = normalise_metrics(dict(metrics.results_dict))
    return {
        "mAP50": values["val/mAP50"],
        "mAP50-95": values["val/mAP50-95"],
        "seconds": time.perf_counter() - t0,
    }


def _ours(
    model: str, out: Path, epochs: int, imgsz: int, device: str, home: Path, seed: int
) -> dict:
    from smalltrain.engine.context import JobContext
    from smalltrain.tasks.detect import DetectTask

    task = DetectTask()
    report = task.inspect(BCCD)
    config = task.adaptive_config(
        report, device, "auto", base_model=model, epochs=epochs, image_size=imgsz, seed=seed
    )
    ctx = JobContext("auto", config, BCCD, out / "auto", device=device, cache_dir=home / "cache")
    t0 = time.perf_counter()
    result = task.train(ctx)
    return {
        "mAP50": result.metrics.get("final/mAP50"),
        "mAP50-95": result.metrics.get("final/mAP50-95"),
        "seconds": time.perf_counter() - t0,
        "config": {
            k: v
            for k, v in config.to_dict().items()
            if k in ("batch_size", "nbs", "warmup_epochs", "close_mosaic", "freeze_layers", "lr0")
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=("pretrained", "scratch"), default=None)
    parser.add_argument("--scratch-model", default="yolov8s.yaml")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args(argv)
    if not BCCD.exists():
        print(f"BCCD not found at {BCCD.resolve()}; nothing to measure")
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-preset-") as tmp:
        home = Path(tmp) / "home"
        from smalltrain.tasks.detect import offline

        offline.apply(home)
        from smalltrain.tasks.detect import inspect_dataset

        data_yaml = inspect_dataset(BCCD).build_resolved(Path(tmp) / "dataset")
        starts = {"pretrained": str(PRETRAINED), "scratch": args.scratch_model}
        results: dict[str, Any] = {"epochs": args.epochs, "imgsz": args.imgsz, "seed": args.seed}
        for start, model in starts.items():
            if args.only and start != args.only:
                continue
            out = Path(tmp) / start
            raw = _raw(model, data_yaml, out, args.epochs, args.imgsz, args.device, args.seed)
            print(f"{start:10s} ultralytics defaults: {json.dumps(raw)}", flush=True)
            ours = _ours(model, out, args.epochs, args.imgsz, args.device, home, args.seed)
            print(f"{start:10s} auto preset:          {json.dumps(ours)}", flush=True)
            results[start] = {"ultralytics": raw, "auto": ours}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
