"""Detection speed: our detect job against raw Ultralytics, side by side, same device.

Modes (``--modes``, comma-separated):

- ``throughput``: seconds per epoch of our task's train path (``DetectTask.train``, as a job
  runs it: validation every k epochs, checkpoints on a writer thread) against raw
  ``YOLO(pt).train(...)`` with the same Ultralytics arguments, ``--epochs`` each, patience off.
  Seconds per epoch = (end of the last epoch - start of the first) / epochs, start-up and the
  final evaluation apart. Ratio = raw / ours (target >= 1.5 on a GPU).
- ``pretrained`` / ``scratch``: time to the best validation mAP50, our auto preset against
  Ultralytics' defaults (``epochs`` = ``--epochs``, default 100), from ``--weights`` or from
  the same architecture's .yaml, ``--seeds`` seeds each. Time to best = wall time from the call
  to the validation that reached the run's best mAP50 (start-up included). With ``--epochs``
  below 100, our preset's epoch count is scaled by the same factor. Ratio = median time to
  best of ours / of the default runs (target <= 0.40), best mAP50 = the medians' difference
  (target within +-0.01). ``--auto-seeds`` runs our (shorter) preset on more seeds than the
  default run when device time is short; ``--first-seed`` and ``--sides default`` add seeds of
  one side to an earlier call's.

Usage::

    python bench/bench_detect_speed.py --device cpu --imgsz 160 --epochs 3 --seeds 1
    python bench/bench_detect_speed.py --device 0 --modes throughput --epochs 30 --out r.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared" / "data"
DEFAULT_DATA = SHARED / "detection" / "bccd" / "data.yaml"
DEFAULT_WEIGHTS = SHARED / "weights" / "yolov8s_fall_detection.pt"


def _say(*parts: Any) -> None:
    print(*parts, flush=True)


class _Clock:
    """Wall times of a run's training start, each epoch end and each validation's mAP50."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.start: float | None = None
        self.epoch_ends: list[float] = []
        self.vals: list[tuple[float, float]] = []  # (seconds since t0, mAP50)

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def epoch(self, map50: float | None) -> None:
        t = self.now()
        self.epoch_ends.append(t)
        if map50 is not None:
            self.vals.append((t, float(map50)))

    def summary(self, wall: float) -> dict[str, float]:
        n = len(self.epoch_ends)
        start = self.start if self.start is not None else 0.0
        per_epoch = (self.epoch_ends[-1] - start) / n if n else float("nan")
        best_t, best = max(self.vals, key=lambda v: (v[1], -v[0])) if self.vals else (0.0, 0.0)
        return {
            "epochs": n,
            "validations": len(self.vals),
            "s_per_epoch": per_epoch,
            "startup_s": start,
            "wall_s": wall,
            "time_to_best_s": best_t,
            "best_map50": best,
        }


def _raw(model: str, data: Path, out: Path, args: dict[str, Any]) -> dict[str, float]:
    from ultralytics import YOLO

    from smalltrain.tasks.detect.callbacks import redirect_output

    clock = _Clock()
    yolo = YOLO(model)

    def started(trainer: Any) -> None:
        clock.start = clock.now()

    def fit_end(trainer: Any) -> None:
        if trainer.epoch < trainer.epochs and len(clock.epoch_ends) <= trainer.epoch:
            clock.epoch((trainer.metrics or {}).get("metrics/mAP50(B)"))

    yolo.add_callback("on_train_start", started)
    yolo.add_callback("on_fit_epoch_end", fit_end)
    with redirect_output(out / "raw.log"):
        yolo.train(data=str(data), project=str(out), name="raw", exist_ok=True, **args)
    return clock.summary(clock.now())


def _ours(config: Any, data: Path, out: Path) -> dict[str, float]:
    from smalltrain.engine.context import JobContext
    from smalltrain.engine.events import EpochMetrics, Event, TrainingStarted
    from smalltrain.tasks.detect import DetectTask

    clock = _Clock()

    def emit(event: Event) -> None:
        if isinstance(event, TrainingStarted):
            clock.start = clock.now()
        elif isinstance(event, EpochMetrics):
            clock.epoch(event.metrics.get("val/mAP50"))

    ctx = JobContext("bench", config, data, out / "ours", cache_dir=out / "home" / "cache")
    ctx.emit = emit
    result = DetectTask().train(ctx)
    assert result.status == "completed", result.status
    return clock.summary(clock.now())


def _report(data: Path) -> Any:
    from smalltrain.tasks.detect import DetectTask

    return DetectTask().inspect(data)


def throughput(a: argparse.Namespace, data: Path, work: Path) -> dict[str, Any]:
    """Seconds per epoch, ours vs raw, same Ultralytics arguments."""
    from smalltrain.tasks.detect import TrainingConfig

    epochs = a.epochs or 20
    config = TrainingConfig(
        base_model=str(a.weights), epochs=epochs, batch_size=a.batch, image_size=a.imgsz,
        patience=0, freeze_layers=0, workers=a.workers, device=a.device_ours, seed=0,
        nbs=a.batch, val_every=0, preset="auto",
    )  # fmt: skip
    args = {**config.ultralytics_args(), "device": a.device, "plots": False}
    _say(f"throughput: {epochs} epochs each, imgsz {a.imgsz}, batch {a.batch}")
    raw = _raw(str(a.weights), _resolved(data, work), work / "tp-raw", args)
    _say("  raw  ", _fmt(raw))
    ours = _ours(config, data, work / "tp-ours")
    _say("  ours ", _fmt(ours))
    ratio = raw["s_per_epoch"] / ours["s_per_epoch"]
    _say(f"  epoch throughput ours/raw = {ratio:.2f}x (target >= 1.5 on a GPU)")
    return {"raw": raw, "ours": ours, "throughput_ratio": ratio}


def time_to_best(a: argparse.Namespace, data: Path, work: Path, start: str) -> dict[str, Any]:
    """Our auto preset vs Ultralytics' defaults, from the .pt or from scratch."""
    import dataclasses

    from smalltrain.tasks.detect import DetectTask

    model = str(a.weights) if start == "pretrained" else _arch_yaml(Path(a.weights))
    default_epochs = a.epochs or 100
    task = DetectTask()
    base = task.adaptive_config(
        _report(data), a.device_ours, "auto", base_model=model, image_size=a.imgsz,
        batch_size=a.batch, workers=a.workers,
    )  # fmt: skip
    ours_epochs = max(1, round(base.epochs * default_epochs / 100))
    runs: list[dict[str, Any]] = []
    sides = {x.strip() for x in a.sides.split(",")}
    for i in range(max(a.seeds, a.auto_seeds or 0)):
        seed = a.first_seed + i
        config = task.adaptive_config(
            _report(data), a.device_ours, "auto", base_model=model, image_size=a.imgsz,
            batch_size=a.batch, workers=a.workers, epochs=ours_epochs, seed=seed,
        )  # fmt: skip
        config = dataclasses.replace(config, device=a.device_ours)
        raw_args = {"epochs": default_epochs, "imgsz": a.imgsz, "batch": a.batch,
                    "device": a.device, "seed": seed, "workers": a.workers,
                    "plots": False}  # fmt: skip
        _say(f"{start} seed {seed}: default {default_epochs} epochs vs auto {config.epochs} "
             f"epochs (patience {config.patience} validations, "
             f"val_every {config.val_every})")  # fmt: skip
        run: dict[str, Any] = {"seed": seed}
        if i < a.seeds and "default" in sides:
            run["default"] = _raw(model, _resolved(data, work), work / f"{start}-{seed}-raw",
                                  raw_args)  # fmt: skip
            _say("  default", _fmt(run["default"]))
        if i < (a.auto_seeds or a.seeds) and "auto" in sides:
            run["auto"] = _ours(config, data, work / f"{start}-{seed}-ours")
            _say("  auto   ", _fmt(run["auto"]))
        runs.append(run)
    # Medians over the seeds each side ran (with --auto-seeds the sides may differ in number).
    if not all(any(side in r for r in runs) for side in ("default", "auto")):
        return {"runs": runs}  # one side only (--sides): compared with another call's runs
    default_t = statistics.median(r["default"]["time_to_best_s"] for r in runs if "default" in r)
    auto_t = statistics.median(r["auto"]["time_to_best_s"] for r in runs if "auto" in r)
    default_map = statistics.median(r["default"]["best_map50"] for r in runs if "default" in r)
    auto_map = statistics.median(r["auto"]["best_map50"] for r in runs if "auto" in r)
    ratio, delta = auto_t / default_t, auto_map - default_map
    _say(f"  {start}: time to best auto/default = {ratio:.2f} (target <= 0.40), "
         f"best mAP50 auto - default = {delta:+.3f} (target >= -0.01)")  # fmt: skip
    return {"runs": runs, "time_to_best_ratio": ratio, "map50_delta": delta}


def _arch_yaml(weights: Path) -> str:
    """The model yaml of a .pt's architecture (e.g. yolov8s.yaml), to train it from scratch."""
    from smalltrain.engine.ptinfo import peek

    args = (peek(weights).get("train_args") or {}) if weights.is_file() else {}
    name = Path(str(args.get("model", "yolov8s.pt"))).stem
    return f"{name}.yaml" if name.startswith("yolo") else "yolov8s.yaml"


def _resolved(data: Path, work: Path) -> Path:
    """The dataset as Ultralytics can read it (our resolved copy, built once)."""
    target = work / "resolved"
    return _report(data).build_resolved(target)  # type: ignore[no-any-return]


def _fmt(r: dict[str, float]) -> str:
    return (f"{r['s_per_epoch']:.2f} s/epoch over {r['epochs']} epochs "
            f"({r['validations']} validations), start-up {r['startup_s']:.1f} s, "
            f"wall {r['wall_s']:.1f} s, best mAP50 {r['best_map50']:.3f} "
            f"at {r['time_to_best_s']:.1f} s")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="Ultralytics device: cpu, 0, 1...")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--epochs", type=int, default=0, help="0: 20 (throughput), 100 (default run)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument(
        "--auto-seeds", type=int, default=0,
        help="seeds of our auto preset when they differ from --seeds (its runs are shorter)",
    )  # fmt: skip
    p.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed, +1, ...")
    p.add_argument(
        "--sides", default="default,auto",
        help="time to best: run Ultralytics' defaults, our auto preset, or both (default)",
    )  # fmt: skip
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--modes", default="throughput,pretrained,scratch")
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    a = p.parse_args(argv)
    a.device_ours = a.device if not a.device.isdigit() else f"cuda:{a.device}"
    for path in (a.data, a.weights):
        if not Path(path).exists():
            _say(f"skipped: {path} not found (see ../shared/data/README.md)")
            return 2
    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(a).items()}}
    with tempfile.TemporaryDirectory(prefix="bench-detect-speed-") as tmp:
        work = Path(tmp)
        # Ultralytics writes its settings (datasets_dir...) where YOLO_CONFIG_DIR points: keep
        # the user's own settings file out of the benchmark's temporary paths.
        os.environ.setdefault("YOLO_CONFIG_DIR", str(work / "ultralytics-config"))
        for mode in [m.strip() for m in a.modes.split(",") if m.strip()]:
            if mode == "throughput":
                results["throughput"] = throughput(a, a.data, work)
            elif mode in ("pretrained", "scratch"):
                results[mode] = time_to_best(a, a.data, work, mode)
            else:
                p.error(f"unknown mode {mode!r}: throughput, pretrained or scratch")
            if a.out:
                a.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
