"""Checkpoint I/O with torch, plus the RNG-state helpers exact resume needs.

A checkpoint is a ``torch.save``'d dict named ``ckpt-e{epoch:04d}-s{global_step:08d}.pt`` with a
JSON sidecar of the same stem; the sidecar side (names, listing, choosing, retention) is in the
torch-free ``engine.checkpoint_index`` and re-exported here. Rules:

- writes are atomic (temporary file, fsync, rename) and a state holding a NaN/inf tensor is
  refused, so no NaN weight is ever saved;
- loads use ``torch.load(weights_only=True)``: no pickled code runs; a missing, truncated or
  corrupt file raises ``CheckpointError`` saying which file and what to do;
- retention keeps the newest N, the best by a monitored metric (a NaN never counts as best) and
  the checkpoint a run resumed from.
"""

from __future__ import annotations

import contextlib
import io
import random
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from smalltrain.engine.checkpoint_index import (
    CHECKPOINT_FORMAT,
    CheckpointInfo,
    checkpoint_name,
    choose_checkpoint,
    latest_checkpoint,
    list_checkpoints,
    manage_checkpoints,
    newest_verified,
    package_versions,
    sidecar_path,
    usable_checkpoints,
    verify,
)
from smalltrain.engine.fsutil import (
    atomic_write_bytes,
    atomic_write_json,
    ensure_free,
    sha256_bytes,
)
from smalltrain.engine.plain import plain
from smalltrain.errors import CheckpointError

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointInfo",
    "capture_rng_state",
    "checkpoint_name",
    "find_resumable",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "manage_checkpoints",
    "newest_verified",
    "package_versions",
    "restore_rng_state",
    "choose_checkpoint",
    "save_checkpoint",
    "save_torch_file",
    "sidecar_path",
    "strip_for_inference",
]

_RESUME_HINT = (
    "resume from an earlier checkpoint: smalltrain resume picks the newest valid one automatically"
)
# Room left for the sidecar, the database and the job's final status after a checkpoint.
_CHECKPOINT_MARGIN = 1 << 20
# Top-level keys that only matter for resuming training; strip_for_inference drops them.
TRAINING_ONLY_PREFIXES = ("optimizer", "scheduler", "rng", "sampler", "scaler", "grad_scaler")


# --- saving -------------------------------------------------------------------------------------


def _walk_tensors(obj: Any, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """Yield ``(dotted key, tensor)`` for every tensor in nested dicts, lists and tuples."""
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            yield from _walk_tensors(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from _walk_tensors(value, f"{prefix}.{i}" if prefix else str(i))


def _first_non_finite(state: Mapping[str, Any]) -> str | None:
    for key, tensor in _walk_tensors(state):
        if (tensor.is_floating_point() or tensor.is_complex()) and not bool(
            torch.isfinite(tensor).all()
        ):
            return key
    return None


def save_checkpoint(
    directory: Path,
    state: dict[str, Any],
    *,
    epoch: int,
    global_step: int,
    metrics: Mapping[str, float] | None = None,
    reason: str = "interval",
) -> Path:
    """Write ``state`` atomically as a self-describing checkpoint, then its JSON sidecar.

    Adds ``format``, ``versions``, ``epoch``, ``global_step``, ``metrics`` and ``saved_at`` to a
    copy of ``state``. The state must hold only what ``torch.load(weights_only=True)`` accepts:
    tensors, dicts, lists, tuples, str, int, float, bool and None.

    The state is serialised in memory first, so its size is known: a disk without room for
    it (plus a 1 MiB margin for the sidecar and the job's records) is refused before anything
    is written, and the previous checkpoints stay as they were.

    Returns:
        The path of the ``.pt`` file.

    Raises:
        CheckpointError: a floating tensor anywhere in ``state`` (optimizer state included) holds
            NaN or inf; nothing is written.
        DiskFull: no room for the checkpoint or its sidecar; nothing new is left behind.
    """
    directory = Path(directory)
    bad = _first_non_finite(state)
    if bad is not None:
        raise CheckpointError(
            f"refusing to save checkpoint at epoch {epoch}, step {global_step} in {directory}: "
            f"tensor {bad!r} contains NaN or inf. Training diverged; lower the learning rate or "
            f"resume from an earlier checkpoint"
        )
    clean_metrics = {str(k): float(v) for k, v in (metrics or {}).items()}
    now = time.time()
    payload = {
        **state,
        "format": CHECKPOINT_FORMAT,
        "versions": package_versions(),
        "epoch": int(epoch),
        "global_step": int(global_step),
        "metrics": clean_metrics,
        "saved_at": now,
    }
    path = directory / checkpoint_name(epoch, global_step)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getbuffer().tobytes()
    del buffer
    ensure_free(path, len(data), margin=_CHECKPOINT_MARGIN, what="checkpoint")
    atomic_write_bytes(path, data, what="checkpoint")
    sidecar = {
        "format": CHECKPOINT_FORMAT,
        "epoch": int(epoch),
        "global_step": int(global_step),
        "metrics": plain(clean_metrics),
        "reason": reason,
        "time": now,
        "size": len(data),
        "sha256": sha256_bytes(data),
    }
    try:
        atomic_write_json(sidecar_path(path), sidecar, what="checkpoint sidecar")
    except BaseException:
        # A checkpoint without its sidecar could not be verified later: take it back, so the
        # previous (verified) checkpoint stays the resume point.
        with contextlib.suppress(OSError):
            path.unlink()
        raise
    return path


def save_torch_file(path: Path, obj: Any, *, what: str = "model file") -> Path:
    """``torch.save`` ``obj`` to ``path`` atomically, serialised in memory first so that a full
    disk is refused before anything is written, with the exact size it needed.

    Raises:
        DiskFull: no room for the file (plus a 1 MiB margin).
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    data = buffer.getbuffer().tobytes()
    ensure_free(path, len(data), margin=_CHECKPOINT_MARGIN, what=what)
    return atomic_write_bytes(path, data, what=what)


# --- loading ------------------------------------------------------------------------------------


def _describe_load_error(exc: BaseException) -> str:
    text = str(exc)
    marker = "WeightsUnpickler error:"
    if marker in text:
        detail = " ".join(text.split(marker, 1)[1].split("\n\nCheck the documentation")[0].split())
        return f"contains data weights_only loading refuses (nothing was executed): {detail}"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    if len(first) > 200:
        first = first[:197] + "..."
    return f"truncated or corrupt: {first}"


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``torch.load(weights_only=True)``.

    Raises:
        CheckpointError: the file is missing, truncated, corrupt, not a smalltrain checkpoint, or
            written by a newer smalltrain. The message names the file and what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; {_RESUME_HINT}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, ...
        raise CheckpointError(
            f"checkpoint {path} is unreadable, {_describe_load_error(exc)}; {_RESUME_HINT}"
        ) from exc
    if not isinstance(state, dict) or "format" not in state:
        raise CheckpointError(
            f"{path} is not a smalltrain checkpoint (it has no 'format' entry); {_RESUME_HINT}"
        )
    if int(state["format"]) > CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"checkpoint {path} has format {state['format']}, newer than this smalltrain reads "
            f"(format {CHECKPOINT_FORMAT}); upgrade smalltrain to load it"
        )
    return state


# --- resuming -----------------------------------------------------------------------------------


def find_resumable(
    directory: Path,
    *,
    validate: bool = True,
    map_location: str | torch.device = "cpu",
    on_skip: Callable[[Path, str], None] | None = None,
) -> tuple[Path, dict[str, Any]] | None:
    """Return ``(path, state)`` of the newest checkpoint that loads cleanly, or None.

    Verified checkpoints (the sidecar's sha256 matches) come first; one without a usable
    sidecar is tried only after every verified one. Corrupt checkpoints are skipped silently;
    pass ``on_skip(path, why)`` to hear about them.

    Args:
        validate: also require the file's size and sha256 to match its sidecar, when it has them.
    """
    if validate:
        candidates = [i.path for i in usable_checkpoints(directory)]
        for info in reversed(list_checkpoints(directory)):
            if info.path not in candidates and on_skip is not None:
                on_skip(info.path, verify(info) or "unreadable")
    else:
        candidates = [i.path for i in reversed(list_checkpoints(directory))]
    for path in candidates:
        try:
            return path, load_checkpoint(path, map_location=map_location)
        except CheckpointError as exc:
            if on_skip is not None:
                on_skip(path, str(exc))
    return None


# --- RNG state ----------------------------------------------------------------------------------


def capture_rng_state() -> dict[str, Any]:
    """Capture python, numpy (legacy global), torch CPU and (when in use) CUDA RNG states.

    The result holds only tensors, ints, floats and None, so it survives
    ``torch.load(weights_only=True)``.
    """
    py_version, py_internal, py_gauss = random.getstate()
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": {
            "version": int(py_version),
            "state": torch.tensor(py_internal, dtype=torch.int64),
            "gauss_next": py_gauss,
        },
        "numpy": {
            "kind": str(np_kind),
            "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "cached_gaussian": float(np_gauss),
        },
        "torch": torch.get_rng_state(),
        # Only when CUDA is in use: asking for its state would otherwise create a CUDA
        # context on every GPU for a CPU-only job.
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
    }
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Restore RNG states captured by ``capture_rng_state`` (missing parts are left alone).

    CUDA states are restored for as many devices as both the checkpoint and this machine have.
    """
    if "python" in state:
        py = state["python"]
        internal = tuple(int(v) for v in py["state"].tolist())
        random.setstate((int(py["version"]), internal, py["gauss_next"]))
    if "numpy" in state:
        n = state["numpy"]
        keys = n["keys"].cpu().numpy().astype(np.uint32)
        np.random.set_state(
            (n["kind"], keys, int(n["pos"]), int(n["has_gauss"]), float(n["cached_gaussian"]))
        )
    if "torch" in state:
        torch.set_rng_state(state["torch"].cpu().to(torch.uint8))
    cuda_states = state.get("cuda")
    if cuda_states and torch.cuda.is_available():
        for device, cuda_state in enumerate(cuda_states[: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state.cpu().to(torch.uint8), device)


# --- export -------------------------------------------------------------------------------------


def strip_for_inference(state: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of a checkpoint state without what only resuming needs.

    Drops top-level keys starting with optimizer, scheduler, rng, sampler or (grad_)scaler; keeps
    model weights, model constructor arguments, configs, metrics and versions. Marks the result
    with ``"inference_only": True``.
    """
    kept = {k: v for k, v in state.items() if not str(k).startswith(TRAINING_ONLY_PREFIXES)}
    kept["inference_only"] = True
    return kept
