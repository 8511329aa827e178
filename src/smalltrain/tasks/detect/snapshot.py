"""Ultralytics' checkpoint, built off the training thread from a cheap snapshot.

Ultralytics' ``save_model`` serialises last.pt on the training thread: a deep copy of the EMA
model in fp16, a deep copy of the optimizer state in fp16, ``torch.save`` of the whole dict and
a polars read of results.csv (about 0.3 s of a 1.1 s epoch on an H100). :func:`take` does on the
training thread only what must see the live state:

- Ultralytics' NaN guard on the live EMA (resync poisoned tensors from the model), with one
  host sync instead of one per tensor;
- clones of the EMA's parameters and buffers and of the optimizer state tensors (on a GPU the
  copies are queued, not waited for). The EMA *module* is rebuilt on the writer thread by a
  ``deepcopy`` whose memo maps each live parameter and buffer to its clone: Ultralytics'
  deepcopy of the module walks thousands of Python objects (about 1 s for the tiny test model
  on a loaded 2-core CPU; 17 ms of pure Python for YOLOv8s), clones alone take about 1.4 ms.
  The module's other attributes are read when the writer copies it, normally during the next
  epoch's batches, when nothing changes them (Ultralytics sets them at the epoch's end and
  during validation; they are constants or caches such as the head's anchors);
- the small metadata: epoch, fitness, stopper, EMA updates, a copy of the arguments, metrics,
  the scaler's state, the date and the bytes of results.csv.

It returns a function that the writer thread calls to build exactly the dict ``save_model``
builds (same keys, same types: the EMA model in fp16 and contiguous, NaN/Inf clamped, QAT
stripped; the optimizer state through Ultralytics' own fp16 conversion; ``train_results`` from
polars as Ultralytics reads it) and ``torch.save`` it to bytes. Ultralytics' own load and resume
code reads the files as before.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from copy import deepcopy
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from ultralytics import __version__
from ultralytics.utils import GIT
from ultralytics.utils.torch_utils import (
    convert_optimizer_state_dict_to_fp16,
    qat_state,
    strip_qat,
    unwrap_model,
)

__all__ = ["take"]


def take(trainer: Any) -> Callable[[], bytes]:
    """Snapshot ``trainer``'s checkpoint state now; the result serialises it (on any thread)."""
    _resync_ema(trainer)
    ema = trainer.ema.ema
    csv = Path(trainer.csv)
    meta = {
        "epoch": trainer.epoch,
        "best_fitness": trainer.best_fitness,
        "stopper": {
            "best_fitness": trainer.stopper.best_fitness,
            "best_epoch": trainer.stopper.best_epoch,
        },
        "updates": trainer.ema.updates,
        "modelopt": qat_state(ema),
        "scaler": trainer.scaler.state_dict(),
        "train_args": dict(vars(trainer.args)),
        "train_metrics": {**trainer.metrics, "fitness": trainer.fitness},
        "date": datetime.now().astimezone().isoformat(),
    }
    memo = _tensor_memo(ema)
    optimizer = _clone_state(trainer.optimizer.state_dict())
    results = csv.read_bytes() if csv.is_file() else None
    ready = _copies_queued(ema)

    def build() -> bytes:
        if ready is not None:  # the writer thread may run on another CUDA stream
            ready.synchronize()
        return _serialise(meta, deepcopy(ema, memo), optimizer, results)

    return build


def _copies_queued(module: torch.nn.Module) -> Any:
    """A CUDA event after the snapshot's copies (None on the CPU): no wait on this thread."""
    first = next(module.parameters(), None)
    if first is None or first.device.type != "cuda":
        return None
    event = torch.cuda.Event()
    event.record()
    return event


def _tensor_memo(module: torch.nn.Module) -> dict[int, Any]:
    """A deepcopy memo: each parameter and buffer of ``module`` -> its copy, made now."""
    memo: dict[int, Any] = {}
    originals: list[Any] = []  # kept alive with the memo, so no id is reused (deepcopy's rule)
    memo[id(memo)] = originals
    for m in module.modules():
        for p in m._parameters.values():
            if p is not None and id(p) not in memo:
                memo[id(p)] = torch.nn.Parameter(p.detach().clone(), p.requires_grad)
                originals.append(p)
        for b in m._buffers.values():
            if b is not None and id(b) not in memo:
                memo[id(b)] = b.detach().clone()
                originals.append(b)
    return memo


def _resync_ema(trainer: Any) -> None:
    """Ultralytics' guard: a poisoned EMA tensor is resynced from the live model where finite.

    One batched check first (one host sync); only a non-finite EMA runs Ultralytics' own loop.
    """
    ema = trainer.ema.ema
    floats = [v for v in ema.state_dict().values() if v.is_floating_point()]
    if not floats or bool(torch.stack(torch._foreach_norm(floats)).isfinite().all()):
        return
    model_sd = unwrap_model(trainer.model).state_dict()
    for k, v in ema.state_dict().items():
        poisoned = isinstance(v, torch.Tensor) and not torch.isfinite(v).all()
        if poisoned and torch.isfinite(model_sd[k]).all():
            v.copy_(model_sd[k])


def _clone_state(state_dict: dict[str, Any]) -> dict[str, Any]:
    """``deepcopy(optimizer.state_dict())`` with the tensor copies queued on their device."""
    state = {
        i: {k: v.detach().clone() if isinstance(v, torch.Tensor) else deepcopy(v)
            for k, v in s.items()}
        for i, s in state_dict["state"].items()
    }  # fmt: skip
    return {"state": state, "param_groups": deepcopy(state_dict["param_groups"])}


def _serialise(
    meta: dict[str, Any], ema: Any, optimizer: dict[str, Any], results: bytes | None
) -> bytes:
    """The bytes of Ultralytics' ``save_model`` checkpoint (its code, off the training thread)."""
    ema = ema.half().to(memory_format=torch.contiguous_format)
    if hasattr(ema, "criterion"):
        ema.criterion = None
    for v in ema.state_dict().values():
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            torch.nan_to_num_(v)
    strip_qat(ema)
    ckpt = {
        "epoch": meta["epoch"],
        "best_fitness": meta["best_fitness"],
        "stopper": meta["stopper"],
        "model": None,
        "ema": ema,
        "updates": meta["updates"],
        "modelopt": meta["modelopt"],
        "optimizer": convert_optimizer_state_dict_to_fp16(optimizer),
        "scaler": meta["scaler"],
        "train_args": meta["train_args"],
        "train_metrics": meta["train_metrics"],
        "train_results": _read_results(results),
        "date": meta["date"],
        "version": __version__,
        "git": {
            "root": str(GIT.root),
            "branch": GIT.branch,
            "commit": GIT.commit,
            "message": GIT.message,
            "origin": GIT.origin,
        },
        "license": "AGPL-3.0 (https://ultralytics.com/license)",
        "docs": "https://docs.ultralytics.com",
    }
    buffer = io.BytesIO()
    torch.save(ckpt, buffer)
    return buffer.getvalue()


def _read_results(data: bytes | None) -> dict[str, Any]:
    """results.csv as Ultralytics' ``read_results_csv`` returns it ({} when unreadable)."""
    import polars as pl  # as in Ultralytics: only when a checkpoint is built

    if data is None:  # no results.csv yet: Ultralytics' read fails the same way
        return {}
    try:
        return dict(pl.read_csv(data, infer_schema_length=None).to_dict(as_series=False))
    except Exception:
        return {}
