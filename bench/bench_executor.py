"""Process-executor overhead: the same job inline (this process) and in a spawned child.

The inline run happens in a fresh spawned process too (task imported first, as the child does
before it reports "ready"), so both sides pay the same cold-process costs. Reported: the
child's one-off start-up (spawn, interpreter, imports of torch and the task, until "ready"), its
run (ready until the final message: training plus event relaying), its teardown, and

    inline / process run     (target >= 0.97: process isolation costs < 3 %)

Both sides use the same number of torch threads (``--threads``, default 1: on a small shared
machine two busy threads per side mostly measure contention).

Usage: python bench/bench_executor.py [--task audio|toy] [--repeats 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from smalltrain import tasks
from smalltrain.engine.context import (
    CancelToken,
)
from smalltrain.engine.events import Event
from smalltrain.service.execution.executors import (
    AttemptSpec,
    make_executor,
    register_extra_tasks,
)
from smalltrain.service.planning import JobSpec, plan_job
from smalltrain.store.datasets import DatasetStore
from smalltrain.store.db import JobStore
from smalltrain.store.models import ModelStore
from smalltrain.tasks import toy

AUDIO = {
    "epochs": 4, "batch_size": 4, "model_width": 8, "model_capacity": 0.5, "latent_dim": 16,
    "kl_warmup_epochs": 1, "checkpoint_every": 2, "preview_every": 0,
    "augmentation_expansion": 2, "chunk_hop_seconds": 0.25,
}  # fmt: skip
TOY = {"epochs": 20, "steps_per_epoch": 50, "hidden": 512, "lr": 0.001}


def _spec(root: Path, task: str, threads: int) -> AttemptSpec:
    data = root / "data"
    if task == "audio":
        from smalltrain.tasks.audio.data.synth import make_sound_folder

        make_sound_folder(data, n_files=8, seed=1)
        job_spec = JobSpec(dataset=data, preset="tiny", overrides=AUDIO, device="cpu")
    else:
        toy.install()
        data.mkdir(parents=True)
        job_spec = JobSpec(dataset=data, task="toy", overrides=TOY)
    store = JobStore(root / "db.sqlite")
    job = plan_job(job_spec, DatasetStore(store), ModelStore(root / "models"), root)
    return AttemptSpec(
        job.id, job.task, job.config, Path(job.dataset_path), root / "run", device="cpu"
    )


def _inline_cold(spec: AttemptSpec, threads: int) -> float:
    """In a fresh process (like the child): import the task, then time the inline run."""
    register_extra_tasks()
    torch.set_num_threads(threads)
    tasks.get_task(spec.task)
    events: list[Event] = []
    start = time.perf_counter()
    outcome = make_executor("inline").execute(spec, events.append, CancelToken())
    if outcome.status != "completed":
        raise RuntimeError(f"inline run failed: {outcome.error}\n{outcome.traceback}")
    return time.perf_counter() - start


def _run_inline(spec: AttemptSpec, threads: int) -> float:
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        return pool.submit(_inline_cold, spec, threads).result()


def _run_process(spec: AttemptSpec) -> tuple[float, float, float]:
    events: list[Event] = []
    start = time.perf_counter()
    outcome = make_executor("process").execute(spec, events.append, CancelToken())
    wall = time.perf_counter() - start
    if outcome.status != "completed":
        raise SystemExit(f"process run failed: {outcome.error}\n{outcome.traceback}")
    return wall, outcome.startup_s or 0.0, outcome.run_s or 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("audio", "toy"), default="audio")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads, both sides")
    args = parser.parse_args()
    inline, wall, startup, run = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        spec = _spec(Path(tmp), args.task, args.threads)
        for n in range(args.repeats):  # interleaved, so load drift hits both alike
            fresh = {**spec.__dict__, "run_dir": spec.run_dir.with_name(f"inline-{n}")}
            inline.append(_run_inline(AttemptSpec(**fresh), args.threads))
            fresh["run_dir"] = spec.run_dir.with_name(f"process-{n}")
            w, s, r = _run_process(AttemptSpec(**fresh))
            wall, startup, run = [*wall, w], [*startup, s], [*run, r]
    med = statistics.median
    teardown = [w - s - r for w, s, r in zip(wall, startup, run, strict=True)]

    def show(label: str, values: list[float]) -> None:
        print(f"{label:44} {med(values):6.2f} s   ({', '.join(f'{v:.2f}' for v in values)})")

    print(f"task {args.task}: {args.repeats} runs each, medians; {args.threads} torch thread(s)")
    show("inline, fresh process, task imported", inline)
    show("process executor: wall", wall)
    show("  start-up (spawn, imports, until ready)", startup)
    show("  run (ready until the final message)", run)
    show("  teardown (child exit, reaping)", teardown)
    print(f"ratio inline / process run: {med(inline) / med(run):.3f} (target >= 0.97)")


if __name__ == "__main__":
    main()
