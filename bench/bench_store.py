"""Job store throughput: batched metric inserts vs one transaction per row, and job queries.

Run: ``python bench/bench_store.py [--jobs 10000] [--rows 50000] [--json]``

- Metric rows/second written with ``append_metrics`` in batches (as the scheduler does),
  against the baseline of one transaction per row; the ratio is printed.
- With ``--jobs`` jobs in the table: ``list_jobs`` (newest 100, by status, by dataset),
  ``get_job`` by prefix, ``count_jobs`` and ``claim_next``; median of repeated calls.

The database is a real file in a temporary folder (WAL, synchronous=NORMAL, as in use).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from smalltrain.engine.jobs import JobStatus, TrainingJob
from smalltrain.store import JobStore


def _median_ms(fn: Callable[[], object], repeat: int = 30) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def bench_metrics(store: JobStore, rows: int, batch: int, baseline_rows: int) -> dict[str, Any]:
    job = store.insert_job(TrainingJob(task="audio", dataset_path="/bench"))
    data = [("step", s // 1000, s, "train/loss", 1.0 / (s + 1)) for s in range(rows)]
    start = time.perf_counter()
    for i in range(0, rows, batch):
        store.history.append_metrics(job.id, data[i : i + batch])
    batched = rows / (time.perf_counter() - start)

    start = time.perf_counter()
    for row in data[:baseline_rows]:
        store.history.append_metrics(job.id, [row])
    single = baseline_rows / (time.perf_counter() - start)

    series_ms = _median_ms(lambda: store.history.metric_series(job.id, "train/loss"), repeat=5)
    return {
        "batch_size": batch,
        "batched_rows_per_s": round(batched),
        "one_tx_per_row_rows_per_s": round(single),
        "speedup": round(batched / single, 1),
        "series_read_ms": round(series_ms, 1),
        "series_points": rows + baseline_rows,
    }


def bench_jobs(store: JobStore, n_jobs: int) -> dict[str, Any]:
    start = time.perf_counter()
    statuses = [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED]
    for i in range(n_jobs):
        job = TrainingJob(
            task="audio" if i % 2 else "detect",
            dataset_path="/bench",
            dataset=f"ds{i % 20}",
            created_at=1_700_000_000.0 + i,
            config={"epochs": 10, "batch_size": 16},
            status=statuses[i % 3] if i < n_jobs - 50 else JobStatus.QUEUED,
        )
        store.insert_job(job)
    insert_s = time.perf_counter() - start
    newest = store.list_jobs(limit=1)[0]
    return {
        "jobs": n_jobs,
        "insert_jobs_per_s": round(n_jobs / insert_s),
        "list_newest_100_ms": round(_median_ms(lambda: store.list_jobs(limit=100)), 2),
        "list_by_status_100_ms": round(
            _median_ms(lambda: store.list_jobs(status="FAILED", limit=100)), 2
        ),
        "list_by_dataset_100_ms": round(
            _median_ms(lambda: store.list_jobs(dataset="ds7", limit=100)), 2
        ),
        "list_all_ms": round(_median_ms(lambda: store.list_jobs(limit=None), repeat=3), 1),
        "get_by_prefix_ms": round(_median_ms(lambda: store.get_job(newest.id[:6])), 3),
        "count_queued_ms": round(_median_ms(lambda: store.count_jobs(status="QUEUED")), 3),
        "claim_next_ms": round(_median_ms(lambda: store.claim_next(1000), repeat=20), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--baseline-rows", type=int, default=2_000)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with JobStore(Path(tmp) / "metrics.db") as store:
            metrics = bench_metrics(store, args.rows, args.batch, args.baseline_rows)
        with JobStore(Path(tmp) / "jobs.db") as store:
            jobs = bench_jobs(store, args.jobs)
    result = {"machine": f"{platform.machine()} {platform.system()}", "metrics": metrics}
    result["jobs"] = jobs
    if args.json:
        print(json.dumps(result))
        return
    print(f"metric rows, batches of {metrics['batch_size']}: {metrics['batched_rows_per_s']:,}/s")
    print(f"metric rows, one transaction each:  {metrics['one_tx_per_row_rows_per_s']:,}/s")
    print(f"batched / per-row: {metrics['speedup']}x")
    print(f"read a {metrics['series_points']:,}-point curve: {metrics['series_read_ms']} ms")
    for key, value in jobs.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
