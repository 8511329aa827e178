"""GPU checks that no test covers, one per sub-command; each prints one JSON line.

Without CUDA each prints ``{"check": ..., "skipped": "no CUDA"}`` and exits 0.

- ``memcap``: a child process capped at ``max_gpu_memory_percent=0.3`` (our
  ``apply_gpu_memory_cap``) that allocates 50% of the GPU fails with an out-of-memory error
  (the message is reported), and a next child that stays under the cap still runs.
- ``nan``: a NaN injected into one batch of the audio engine on the GPU is skipped on the
  device; host syncs are counted with ``torch.cuda.set_sync_debug_mode("warn")`` (one warning
  per sync) over an epoch; then a diverging run rolls back (the test's recipe, on CUDA).
- ``monitor``: the resource monitor's GPU memory and utilisation while a matmul loop keeps the
  GPU busy, and whether a status is ``constrained`` (the scheduler then holds the next job).

Usage: ``python bench/gpu_checks.py memcap|nan|monitor``
"""

from __future__ import annotations

import json
import multiprocessing
import sys
import threading
import time
import warnings
from typing import Any


def _print(result: dict[str, Any]) -> None:
    print(json.dumps(result, default=str), flush=True)


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _alloc(fraction: float, cap: float | None, out: Any) -> None:
    import torch

    from smalltrain.engine.resources import apply_gpu_memory_cap

    try:
        if cap is not None:
            applied, why = apply_gpu_memory_cap(cap, "cuda:0")
            out.put(("cap", applied, why))
        total = torch.cuda.get_device_properties(0).total_memory
        x = torch.empty(int(total * fraction), dtype=torch.uint8, device="cuda:0")
        out.put(("ok", int(x.numel()), ""))
    except BaseException as exc:  # the point: what a capped job sees
        out.put(("error", type(exc).__name__, str(exc)[:300]))


def memcap() -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    results = []
    for fraction, cap in ((0.5, 0.3), (0.1, 0.3)):
        q = ctx.Queue()
        p = ctx.Process(target=_alloc, args=(fraction, cap, q))
        p.start()
        p.join(120)
        items = []
        while not q.empty():
            items.append(q.get())
        results.append({"fraction": fraction, "cap": cap, "exit": p.exitcode, "events": items})
    over, under = results
    ok = any(e[0] == "error" and "memory" in e[2].lower() for e in over["events"]) and any(
        e[0] == "ok" for e in under["events"]
    )
    return {"check": "memcap", "passed": ok, "runs": results}


def nan() -> dict[str, Any]:
    import torch
    from tests.tasks.audio import test_train as tt

    cfg = tt.tiny_config()
    state = tt._state(cfg)
    state.model.to("cuda")
    state.device = torch.device("cuda")
    state.optimizer = torch.optim.AdamW(state.model.parameters(), lr=cfg.learning_rate, fused=True)
    batches = [torch.rand(2, 1, cfg.n_mels, cfg.n_frames, device="cuda") for _ in range(12)]
    batches[5][0, 0, 0, 0] = float("nan")
    rec = tt.Recorder()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            outcome = tt.train_epoch(
                state, batches, steps_per_epoch=12, emit=rec, cancel=tt.CancelToken()
            )
    finally:
        torch.cuda.set_sync_debug_mode(0)
    syncs = [str(w.message)[:120] for w in caught if "synchroniz" in str(w.message).lower()]
    finite = all(torch.isfinite(v).all() for v in state.model.state_dict().values())
    result = {
        "check": "nan",
        "outcome": outcome,
        "skipped_total": int(state.skipped_total),
        "host_syncs_in_12_steps": len(syncs),
        "sync_samples": syncs[:3],
        "weights_finite": bool(finite),
    }
    result["rollback"] = _rollback()
    result["passed"] = (
        outcome == "completed" and state.skipped_total == 1 and finite and len(syncs) < 12
    ) and result["rollback"].get("passed", False)
    return result


def _rollback() -> dict[str, Any]:
    import tempfile
    from pathlib import Path

    from tests.tasks.audio import test_train as tt

    from smalltrain.errors import TrainingDiverged

    with tempfile.TemporaryDirectory() as tmp:
        sounds = Path(tmp) / "sounds"
        tt.make_sound_folder(sounds, n_files=6, seed=1)
        cfg = tt.tiny_config(
            learning_rate=1e12, lr_schedule="constant", grad_clip_norm=0.0,
            nan_skip_limit=2, max_rollbacks=2, device="cuda",
        )  # fmt: skip
        rec = tt.Recorder()
        try:
            tt.train(cfg, sounds, Path(tmp) / "run", emit=rec)
            return {"passed": False, "why": "did not diverge"}
        except TrainingDiverged as exc:
            rollbacks = [e for e in rec.of(tt.WarningEvent) if e.code == "rollback"]
            return {"passed": len(rollbacks) == 2, "rollbacks": len(rollbacks), "error": str(exc)}


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
    checks = {"memcap": memcap, "nan": nan, "monitor": monitor}
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
