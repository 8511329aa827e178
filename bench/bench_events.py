"""Event latency: from the child's ``emit`` to a subscriber in another process.

A scheduler in this process runs a toy job in a spawned child (the process executor). A
separate follower process subscribes to the job through the store (``TrainingManager.subscribe``,
which follows ``events_after``) and records, for every event, its arrival time minus the time the
child created it. Reported per kind: non-step events (epochs, checkpoints, warnings: stored at
once) and step events (stored in batches, one per flush).

Usage: python bench/bench_events.py [--epochs 60]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from smalltrain.service.manager import JobSpec, TrainingManager
from smalltrain.tasks import toy

FOLLOW = """
import json, sys, time
from smalltrain.service.manager import TrainingManager
m = TrainingManager.open(sys.argv[1], autostart=False)
out = [(e.type, time.time() - e.time) for e in m.subscribe(sys.argv[2])]
print(json.dumps(out))
"""


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    args = parser.parse_args()
    toy.install()
    with tempfile.TemporaryDirectory() as tmp:
        home, data = Path(tmp) / "home", Path(tmp) / "data"
        data.mkdir()
        with TrainingManager.open(home, autostart=False) as manager:
            overrides = {"epochs": args.epochs, "steps_per_epoch": 5, "step_s": 0.02}
            job_id = manager.start_training(JobSpec(dataset=data, task="toy", overrides=overrides))
            follower = subprocess.Popen(
                [sys.executable, "-c", FOLLOW, str(home), job_id], stdout=subprocess.PIPE, text=True
            )
            start = time.perf_counter()
            manager.run_scheduler(until_idle=True)
            wall = time.perf_counter() - start
            out, _ = follower.communicate(timeout=300)
    rows = json.loads(out)
    groups = {
        "non-step events (stored at once)": [lat for kind, lat in rows if kind != "step"],
        "step events (batched, one per flush)": [lat for kind, lat in rows if kind == "step"],
    }
    print(f"toy job: {args.epochs} epochs x 5 steps in {wall:.1f} s; {len(rows)} events followed")
    for label, lats in groups.items():
        if lats:
            p50, p95, top = (1e3 * v for v in (_pct(lats, 50), _pct(lats, 95), max(lats)))
            stats = f"p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  max {top:6.1f} ms"
            print(f"{label:38} n={len(lats):4}  {stats}")


if __name__ == "__main__":
    main()
