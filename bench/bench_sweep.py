"""A sweep of 8 trials: one after another against a 2-node Ray cluster, with and without ASHA.

The same 8 trials of the tiny audio preset (4 seeds × 2 learning rates, every trial judged on
the same validation split) on the demo's 40 synthetic drum hits run:

1. one after another on this machine (process executor, ``max_concurrent=1``: each trial gets
   every core);
2. on a local Ray cluster of two 1-CPU nodes (``max_concurrent=2``), every trial to the end;
3. the same with ASHA early stopping (grace 1 epoch, reduction factor 2, the defaults);
4. the same with a grace of 4 epochs (rungs at 4, 8 and 16 epochs).

Reported: wall times, ``one after another / Ray`` (how much the cluster saves), the epochs
trained and what ASHA saved, and each run's best ``val/sc`` (ASHA should keep it equal).

Usage: python bench/bench_sweep.py [--epochs 20] [--files 40] [--data drums|mixed]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cluster import local_cluster  # noqa: E402
from smalltrain.service.manager import TrainingManager  # noqa: E402
from smalltrain.service.sweeps.spec import SweepSpec, SweepSummary  # noqa: E402
from smalltrain.tasks.audio.data.synth import make_drum_kit, make_sound_folder  # noqa: E402


def _sweep(home: Path, spec: SweepSpec, **kw: Any) -> tuple[float, SweepSummary]:
    with TrainingManager.open(home, **kw) as manager:
        started = time.monotonic()
        summary = manager.wait_sweep(manager.start_sweep(spec))
        took = time.monotonic() - started
    if summary.sweep.status != "COMPLETED":
        raise SystemExit(f"{home.name}: {summary.sweep.status_reason}")
    return took, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument(
        "--data", choices=("drums", "mixed"), default="drums",
        help="the demo's synthetic drum hits, or mixed synthetic sounds",
    )  # fmt: skip
    args = parser.parse_args()
    overrides = {"epochs": args.epochs, "preview_every": 0, "early_stopping_patience": 0,
                 "checkpoint_every": 1}  # fmt: skip
    spec = SweepSpec(dataset="", trials=8, preset="tiny", overrides=overrides,
                     vary={"seed": None, "learning_rate": ["0.001", "0.0003"]})  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / "sounds"
        if args.data == "drums":
            make_drum_kit(data, n_files=args.files, seed=0)
        else:
            make_sound_folder(data, n_files=args.files, seed=1)
        spec = replace(spec, dataset=data)
        local = _sweep(root / "sequential", replace(spec, early_stop=False))
        with local_cluster(nodes=2, cpus=1, cache=root / "node-cache") as cluster:
            from smalltrain.service.execution.ray.executor import RayExecutor

            kw = {"executor": RayExecutor(cluster.address), "max_concurrent": 2}
            full = _sweep(root / "ray", replace(spec, early_stop=False), **kw)
            kw["executor"] = RayExecutor(cluster.address)
            asha = _sweep(root / "ray-asha", spec, **kw)
            kw["executor"] = RayExecutor(cluster.address)
            patient = _sweep(root / "ray-asha-4", replace(spec, grace_epochs=4), **kw)
    print("| 8 trials | wall | epochs trained | best val/sc | one after another / this |")
    print("|---|---|---|---|---|")
    for label, (took, summary) in (
        ("one after another, this machine (process executor)", local),
        ("Ray, 2 nodes × 1 CPU, every trial to the end", full),
        ("**Ray, 2 nodes × 1 CPU, ASHA**", asha),
        ("Ray, 2 nodes × 1 CPU, ASHA with a grace of 4 epochs", patient),
    ):
        best = min(t.best for t in summary.trials if t.best is not None)
        stopped = sum(1 for t in summary.trials if t.stopped_early)
        print(f"| {label} | {took:.1f} s | {summary.epochs_run} ({stopped} stopped early) | "
              f"{best:.4f} | {local[0] / took:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
