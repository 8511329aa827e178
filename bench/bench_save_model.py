"""Training-thread cost of one checkpoint save: Ultralytics' ``save_model`` against ours.

Ours takes a snapshot and returns; the writer thread serialises and writes it (its time is
printed apart, as ``writer``). Measured at the end of a 1-epoch CPU run on the shapes set::

    python bench/bench_save_model.py [--weights ../shared/data/weights/yolov8s_fall_detection.pt]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def main() -> None:
    """Print the median training-thread time of each save (see the module docstring)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", default="", help="a .pt (default: the tiny test yaml)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from ultralytics import YOLO
    from ultralytics.models.yolo.detect import DetectionTrainer

    from smalltrain.tasks.detect.synth import make_shapes_dataset, write_tiny_model
    from smalltrain.tasks.detect.trainer import trainer_for

    tmp = Path(tempfile.mkdtemp(prefix="bench-save-"))
    shapes = make_shapes_dataset(tmp / "shapes")
    data = tmp / "data.yaml"
    data.write_text(shapes.read_text().replace("path: .", f"path: {shapes.parent}"))
    weights = args.weights or str(write_tiny_model(tmp / "tiny.yaml"))
    times: dict[str, list[float]] = {"ultralytics": [], "ours": [], "writer": []}

    def measure(trainer: Any) -> None:
        if times["ours"]:
            return
        trainer.writer.flush()
        last, best = trainer.last, trainer.best
        trainer.last, trainer.best = tmp / "ref-last.pt", tmp / "ref-best.pt"
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            DetectionTrainer.save_model(trainer)
            times["ultralytics"].append(time.perf_counter() - t0)
        trainer.last, trainer.best = last, best
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            trainer.save_model()
            t1 = time.perf_counter()
            trainer.writer.flush()
            times["ours"].append(t1 - t0)
            times["writer"].append(time.perf_counter() - t1)

    model = YOLO(weights)
    model.add_callback("on_model_save", measure)
    model.train(data=str(data), epochs=1, imgsz=64, batch=4, workers=0, device="cpu",
                plots=False, project=str(tmp / "runs"), name="t", exist_ok=True,
                trainer=trainer_for(1), verbose=False)  # fmt: skip
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    print(f"{Path(weights).name}: save_model on the training thread, median of {args.repeats}:")
    print(f"  ultralytics {med['ultralytics']:.1f} ms, ours {med['ours']:.1f} ms "
          f"(writer thread after it {med['writer']:.1f} ms), "
          f"ratio {med['ultralytics'] / med['ours']:.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
