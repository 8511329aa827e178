"""Scheduler CPU while idle: a ``smalltrain worker --serve`` with an empty queue, over 10 s.

Measures the worker process's CPU time after it has settled, from ``/proc/<pid>/schedstat``
(nanoseconds; all threads) where Linux has it, else psutil (10 ms ticks), and reports it as a
percentage of one core.

Usage: python bench/bench_scheduler_idle.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from smalltrain.service.scheduler import scheduler_running


def cpu_seconds(pid: int) -> float:
    """CPU time of a process so far, in seconds, as precisely as this system tells."""
    try:
        total = 0
        for task in Path(f"/proc/{pid}/task").iterdir():  # schedstat of each thread
            total += int((task / "schedstat").read_text().split()[0])
        return total / 1e9
    except OSError:
        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        cmd = [sys.executable, "-m", "smalltrain.cli.main", "--home", tmp, "worker", "--serve"]
        worker = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while scheduler_running(home) is None:  # wait until it holds the home's lock
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the worker did not start")
                time.sleep(0.1)
            time.sleep(1.0)  # let start-up work (imports, recovery) finish
            before = cpu_seconds(worker.pid)
            time.sleep(args.seconds)
            after = cpu_seconds(worker.pid)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
    used = after - before
    print(f"idle scheduler: {used * 1e3:.1f} ms CPU in {args.seconds:.0f} s "
          f"= {100 * used / args.seconds:.2f}% of one core")  # fmt: skip


if __name__ == "__main__":
    main()
