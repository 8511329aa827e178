"""GPU readings no test asserts exactly, one per sub-command; each prints one JSON line.

Without CUDA each prints ``{"check": ..., "skipped": "no CUDA"}`` and exits 0. The memory cap,
the NaN skip without per-step syncs, rollback and the held queue are tests marked ``gpu``
(``tests/service/test_gpu_memory.py``, ``tests/tasks/audio/test_cuda_train.py``).

- ``monitor``: the resource monitor's GPU memory and utilisation while a matmul loop keeps the
  GPU busy, and whether a status is ``constrained`` (the scheduler then holds the next job).

Usage: ``python bench/gpu_checks.py monitor``
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any


def _print(result: dict[str, Any]) -> None:
    print(json.dumps(result, default=str), flush=True)


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def monitor() -> dict[str, Any]:
    import dataclasses

    import torch

    from smalltrain.engine.resources import ResourceMonitor

    # The scheduler holds queued jobs while a status is ``constrained``; threshold 10% here,
    # with 20% of the GPU's memory held by a busy matmul loop.
    mon = ResourceMonitor(gpu_threshold=0.1)
    idle = mon.check()
    stop = threading.Event()
    total = torch.cuda.get_device_properties(0).total_memory
    hold = torch.empty(int(total * 0.2), dtype=torch.uint8, device="cuda")

    def busy() -> None:
        a = torch.randn(8192, 8192, device="cuda")
        while not stop.is_set():
            a = (a @ a).clamp_(-1, 1)
            torch.cuda.synchronize()

    worker = threading.Thread(target=busy)
    worker.start()
    time.sleep(3)  # NVML's utilisation is averaged over the last second or so
    loaded = mon.check()
    stop.set()
    worker.join()
    del hold
    out: dict[str, Any] = {"check": "monitor"}
    for name, status in (("idle", idle), ("loaded", loaded)):
        out[name] = {
            "gpu_percent": status.gpu_percent,
            "constrained": status.constrained,
            "reasons": status.reasons,
            "note": status.note,
            "gpus": [dataclasses.asdict(g) for g in status.gpus],
        }
    util = loaded.gpus[0].utilization_percent if loaded.gpus else None
    out["passed"] = bool(
        loaded.gpu_available and loaded.constrained and (loaded.gpu_percent or 0) >= 20
        and (util is None or util > 0)
    )  # fmt: skip
    return out


def main() -> int:
    which = sys.argv[1] if len(sys.argv) > 1 else ""
    checks = {"monitor": monitor}
    if which not in checks:
        print(f"usage: gpu_checks.py {'|'.join(checks)}", file=sys.stderr)
        return 2
    if not _cuda():
        _print({"check": which, "skipped": "no CUDA"})
        return 0
    _print(checks[which]())
    return 0


if __name__ == "__main__":
    sys.exit(main())
