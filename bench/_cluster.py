"""A local multi-node Ray cluster for the benchmarks (``ray.cluster_utils.Cluster``).

Only the cluster started here is stopped (never ``ray stop``, which would end every Ray
process on the machine).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def local_cluster(nodes: int, cpus: int, cache: Path) -> Iterator[object]:
    """A head with no CPU (the driver's) and ``nodes`` worker nodes of ``cpus`` CPUs."""
    import ray
    from ray.cluster_utils import Cluster

    os.environ["SMALLTRAIN_RAY_CACHE"] = str(cache)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
    )
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,
            "include_dashboard": False,
            "object_store_memory": 100 << 20,
        },
    )
    for _ in range(nodes):
        cluster.add_node(num_cpus=cpus, object_store_memory=100 << 20)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def first_step_after(jobs: object, job_id: str, after: float) -> float | None:
    """The time of a job's first stored step event after ``after`` (epoch seconds)."""
    for _, event in jobs.history.events_after(job_id, 0, limit=1_000_000):  # type: ignore[attr-defined]
        if event.get("type") == "step" and float(event["time"]) >= after:
            return float(event["time"])
    return None
