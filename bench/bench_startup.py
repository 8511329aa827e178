"""Start-up time of light commands: `smalltrain --help` and `jobs list --json`.

Each command runs in a fresh interpreter, several times; the median wall time is printed beside
two baselines in the same run: a bare `python -c pass` (the floor) and `python -c "import
torch"` (what every light command paid before the CLI stopped importing torch).

Usage: python bench/bench_startup.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time


def wall(argv: list[str], repeat: int, env: dict[str, str] | None = None) -> float:
    """Median wall seconds of running ``argv`` to completion (one warm-up run first)."""
    subprocess.run(argv, capture_output=True, check=True, env=env)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True, env=env)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    py = sys.executable
    cli = [py, "-m", "smalltrain.cli.main"]
    with tempfile.TemporaryDirectory() as home:
        rows = {
            "python -c pass": wall([py, "-c", "pass"], args.repeat),
            "python -c 'import torch'": wall([py, "-c", "import torch"], args.repeat),
            "smalltrain --help": wall([*cli, "--help"], args.repeat),
            "smalltrain jobs list --json": wall(
                [*cli, "--home", home, "jobs", "list", "--json"], args.repeat
            ),
        }
    torch_s = rows["python -c 'import torch'"]
    print(f"{'command':32s} {'median s':>9s} {'vs import torch':>16s}")
    for name, seconds in rows.items():
        print(f"{name:32s} {seconds:9.3f} {seconds / torch_s:15.2f}x")


if __name__ == "__main__":
    main()
