"""The ray executor against the process executor, and recovery after a node loss.

On a local Ray cluster (``ray.cluster_utils.Cluster``: a head with no CPU and two 1-CPU
nodes, all on this machine), the same tiny audio job (1 torch thread on both sides) runs:

1. through the process executor (a spawned child here);
2. through the ray executor (the first time cold: the dataset is packed and fetched by the
   node; then cached there; the actor's process is always new),

in interleaved rounds, and reports per run the start latency (queued → first training step),
the training, the tail (finished → COMPLETED), the wall time (queued → COMPLETED) and the median
epoch, then ``process wall / ray wall`` over the medians (target >= 0.95 for a job of a minute
or more).

3. Node loss: a longer job on the 2-node cluster; once it has checkpointed, its node is
   removed. Reported: node gone → Ray reports the actor dead (attempt 1 ends), node gone →
   training again on the other node (the first step of attempt 2), and the job's total time.

Usage: python bench/bench_ray.py [--epochs 200] [--files 12] [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cluster import local_cluster  # noqa: E402
from smalltrain.engine.events import StepMetrics  # noqa: E402
from smalltrain.service.manager import JobSpec, TrainingManager  # noqa: E402
from smalltrain.tasks.audio.data.synth import make_sound_folder  # noqa: E402


class _FirstSteps:
    """Times of every attempt's first training step, from the live event stream."""

    def __init__(self, manager: TrainingManager, job_id: str) -> None:
        self.times: list[float] = []
        self._thread = threading.Thread(target=self._follow, args=(manager, job_id), daemon=True)
        self._thread.start()

    def _follow(self, manager: TrainingManager, job_id: str) -> None:
        expect_first = True
        for event in manager.subscribe(job_id):
            if event.type == "training_started":
                expect_first = True
            elif isinstance(event, StepMetrics) and expect_first:
                self.times.append(time.time())
                expect_first = False


def _run(manager: TrainingManager, spec: JobSpec) -> dict[str, Any]:
    job_id = manager.start_training(spec)
    queued = manager.get_job(job_id).queued_at or time.time()
    steps = _FirstSteps(manager, job_id)
    job = manager.wait(job_id)
    if job.status.value != "COMPLETED":
        raise SystemExit(f"job {job_id}: {job.status} {job.status_reason}")
    finished = job.finished_at or time.time()
    epochs = [v for _, v in manager.jobs.history.metric_series(job_id, "time/epoch_s", "epoch")]
    ended = next(
        float(e["time"])
        for _, e in manager.jobs.history.events_after(job_id, 0, limit=1_000_000)
        if e.get("type") == "training_finished"
    )
    return {
        "latency": steps.times[0] - queued,
        "training": ended - steps.times[0],
        "tail": finished - ended,
        "wall": finished - queued,
        "epoch": statistics.median(epochs) if epochs else float("nan"),
        "job": job,
    }


def _overhead(
    root: Path, data: Path, cluster: Any, overrides: dict[str, Any], repeats: int
) -> list[str]:
    from smalltrain.service.execution.ray.executor import RayExecutor

    spec = JobSpec(dataset=data, preset="tiny", overrides={**overrides, "num_cpus": 1})
    runs: dict[str, list[dict[str, Any]]] = {"process": [], "ray": []}
    with (
        TrainingManager.open(root / "process") as local,
        TrainingManager.open(root / "ray", executor=RayExecutor(cluster.address)) as remote,
    ):
        # Rounds interleave the two, so that a busy spell of a shared machine hits both alike.
        for _ in range(repeats):
            runs["process"].append(_run(local, spec))
            runs["ray"].append(_run(remote, spec))
    rows = ["| executor | queued → first step | training (first step → finished) | "
            "finished → COMPLETED | queued → COMPLETED | median epoch |",
            "|---|---|---|---|---|---|"]  # fmt: skip
    for label, results in runs.items():
        for n, r in enumerate(results, start=1):
            cold = " (cold: dataset shipped)" if label == "ray" and n == 1 else ""
            rows.append(
                f"| {label} {n}{cold} | {r['latency']:.2f} s | {r['training']:.1f} s | "
                f"{r['tail']:.2f} s | {r['wall']:.1f} s | {r['epoch'] * 1000:.0f} ms |"
            )
    walls = {k: statistics.median(r["wall"] for r in v) for k, v in runs.items()}
    epochs = {k: statistics.median(r["epoch"] for r in v) for k, v in runs.items()}
    rows.append(f"| **process / ray, medians** | | | | **{walls['process'] / walls['ray']:.3f}** | "
                f"{epochs['process'] / epochs['ray']:.3f} |")  # fmt: skip
    return rows


def _node_loss(root: Path, data: Path, cluster: Any, overrides: dict[str, Any]) -> list[str]:
    from smalltrain.service.execution.ray.executor import RayExecutor

    spec = JobSpec(dataset=data, preset="tiny", overrides={**overrides, "num_cpus": 1})
    with TrainingManager.open(root / "loss", executor=RayExecutor(cluster.address)) as manager:
        job_id = manager.start_training(spec)
        steps = _FirstSteps(manager, job_id)
        while manager.get_job(job_id).epoch < 3:
            time.sleep(0.1)
        node = next(
            e["message"].split("[", 1)[1].split("]", 1)[0]
            for _, e in manager.jobs.history.events_after(job_id, 0, limit=100_000)
            if e.get("type") == "log" and "running on Ray node" in e["message"]
        )
        victim = next(n for n in cluster.list_all_nodes() if n.node_id.startswith(node))
        gone = time.time()
        cluster.remove_node(victim)
        job = manager.wait(job_id)
        attempts = manager.jobs.history.list_attempts(job_id)
    if job.status.value != "COMPLETED" or len(steps.times) < 2:
        raise SystemExit(f"node loss: {job.status} {job.status_reason}")
    noticed = (attempts[0].finished_at or gone) - gone
    return [
        "| node loss | seconds |",
        "|---|---|",
        f"| node gone → attempt 1 ends INTERRUPTED (Ray reports the actor dead) | {noticed:.2f} |",
        f"| **node gone → training again on the other node** | **{steps.times[1] - gone:.1f}** |",
        f"| the whole job (queued → COMPLETED, {len(attempts)} attempts) | "
        f"{(job.finished_at or 0) - (job.queued_at or 0):.1f} |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=200, help="of the overhead job")
    parser.add_argument("--files", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=2, help="interleaved rounds")
    args = parser.parse_args()
    # The tiny preset's own checkpoint interval; about a minute of training on 2 cores.
    overrides = {"epochs": args.epochs, "preview_every": 0, "early_stopping_patience": 0}
    # The node-loss job checkpoints every epoch, so that it has one to resume from early.
    lossy = {**overrides, "epochs": max(20, args.epochs // 3), "checkpoint_every": 1}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / "sounds"
        make_sound_folder(data, n_files=args.files, seed=1)
        with local_cluster(nodes=2, cpus=1, cache=root / "node-cache") as cluster:
            rows = _overhead(root, data, cluster, overrides, args.repeats)
            rows += [""] + _node_loss(root, data, cluster, lossy)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
