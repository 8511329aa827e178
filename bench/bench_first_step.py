"""From ``smalltrain train`` to the job's first training step, side by side in one run.

    .venv/bin/python bench/bench_first_step.py                 # 3 interleaved rounds
    .venv/bin/python bench/bench_first_step.py --repeats 5 --files 20
    git archive BASE src | tar -x -C /tmp/base      # an older checkout's src/ ...
    .venv/bin/python bench/bench_first_step.py --before /tmp/base/src   # ... side by side

Each round runs, one after the other, on the same folder of drum hits (``make_drum_kit``):

- **alone**: ``smalltrain train FOLDER --set epochs=1`` in a home where no worker runs (the
  command runs the scheduler itself and starts the job's process). The home's spectrogram
  cache is already filled by a warm-up job, as on a user's second run.
- **worker**: the same command in a home where ``smalltrain worker --serve`` already runs (and
  has run a warm-up job): the command queues the job and follows it, the worker runs it.

With ``--before SRC`` both paths also run with another checkout's ``src/`` (each in a home of
its own), interleaved with this one's, so that a change is measured before and after in one run.

The clock starts just before the command is started and stops at the time the first ``step``
event was emitted in the training process (its own ``time`` field, read back from the job
database). Each row also splits that time: command start → job queued (``created_at``; the
command's imports and planning), queued → ``training_started`` (the job's process: start-up,
imports, data, model), and ``training_started`` → first step.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def _env(src: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(src), str(ROOT)])
    return env


def _cli(home: Path, *args: str) -> list[str]:
    return [PY, "-m", "smalltrain.cli.main", "--home", str(home), *args]


def train_once(home: Path, folder: Path, name: str, src: Path) -> dict[str, float]:
    """Run ``smalltrain train`` (the code in ``src``) to its end; the times of its job's first
    events."""
    from smalltrain.store import JobStore

    started = time.time()
    subprocess.run(
        _cli(home, "train", str(folder), "--name", name, "--set", "epochs=1", "--json"),
        check=True,
        capture_output=True,
        env=_env(src),
    )
    with JobStore(home / "smalltrain.db") as store:
        job = next(j for j in store.list_jobs(limit=10) if j.model_name == name)
        events = [
            e for _, e in getattr(store, "history", store).events_after(job.id, 0, limit=100_000)
        ]
    first = next(float(e["time"]) for e in events if e["type"] == "step")
    ready = next(float(e["time"]) for e in events if e["type"] == "training_started")
    return {
        "first_step_s": first - started,
        "queued_s": job.created_at - started,
        "setup_s": ready - job.created_at,
        "step_s": first - ready,
    }


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--before", type=Path, help="another checkout's src/ to compare with")
    args = parser.parse_args()
    sys.path[:0] = [str(ROOT / "src"), str(ROOT)]
    from smalltrain.tasks.audio.data.synth import make_drum_kit

    sources = {"": ROOT / "src"}
    if args.before is not None:
        sources = {" (before)": args.before.resolve(), **sources}
    variants = [(path + tag, src) for path in ("alone", "worker") for tag, src in sources.items()]
    with tempfile.TemporaryDirectory(prefix="bench-first-step-") as tmp:
        root = Path(tmp)
        folder = root / "hits"
        make_drum_kit(folder, n_files=args.files, seed=0)
        print(f"{args.files} drum hits; {load()}")
        workers = []
        try:
            for i, (name, src) in enumerate(variants):
                home = root / f"home{i}"
                if name.startswith("worker"):
                    workers.append(
                        subprocess.Popen(
                            _cli(home, "worker", "--serve"),
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            env=_env(src),
                        )
                    )
                # a first job fills the home's spectrogram cache (and warms a worker)
                cold = train_once(home, folder, "warmup", src)
                print(f"{name}: first job in a fresh home {cold['first_step_s']:.2f} s; {load()}")
            rows: dict[str, list[dict[str, float]]] = {name: [] for name, _ in variants}
            for r in range(args.repeats):  # interleaved: the machine's load hits all alike
                for i, (name, src) in enumerate(variants):
                    rows[name].append(train_once(root / f"home{i}", folder, f"r{r}", src))
                line = ", ".join(f"{n} {v[-1]['first_step_s']:.2f} s" for n, v in rows.items())
                print(f"round {r + 1}: {line}; {load()}")
        finally:
            for worker in workers:
                worker.terminate()
                worker.wait(60)
    print(f"\nmedians of {args.repeats} rounds (seconds)")
    print(f"{'path':17s} {'first step':>10s} {'cmd→queued':>10s} {'queued→started':>15s} "
          f"{'started→step':>13s}")  # fmt: skip
    for name, runs in rows.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(
            f"{name:17s} {med['first_step_s']:10.2f} {med['queued_s']:10.2f} "
            f"{med['setup_s']:15.2f} {med['step_s']:13.2f}"
        )
    print(load())


if __name__ == "__main__":
    main()
