"""The checkpoint index: names, sidecars, listing, choosing and retention, without torch.

A checkpoint ``ckpt-e{epoch:04d}-s{global_step:08d}.pt`` has a JSON sidecar of the same stem
(``epoch``, ``global_step``, ``metrics``, ``reason``, ``time``, ``size``, ``sha256``). Everything
here reads sidecars and file names only, so the service and the CLI can list, choose and prune
checkpoints without importing torch; reading and writing the files themselves is in
``engine.checkpoints``.

A checkpoint whose sidecar is missing (a process killed between writing the file and its
sidecar) or records no sha256 is *unverified*: its content cannot be checked, so it is chosen
only when no verified checkpoint exists, and ``choose_checkpoint`` then says so.
"""

from __future__ import annotations

import functools
import json
import math
import platform
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from smalltrain.engine.fsutil import sha256_file

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointInfo",
    "CheckpointChoice",
    "checkpoint_name",
    "choose_checkpoint",
    "latest_checkpoint",
    "list_checkpoints",
    "manage_checkpoints",
    "newest_verified",
    "package_versions",
    "sidecar_path",
]

CHECKPOINT_FORMAT = 1

_NAME_RE = re.compile(r"^ckpt-e(\d+)-s(\d+)\.pt$")
_OPTIONAL_PACKAGES = ("ultralytics", "soundfile", "soxr")


def checkpoint_name(epoch: int, global_step: int) -> str:
    """Return the file name of the checkpoint at ``epoch`` / ``global_step``."""
    return f"ckpt-e{epoch:04d}-s{global_step:08d}.pt"


def sidecar_path(path: Path) -> Path:
    """Return the JSON sidecar path of a checkpoint (same stem, ``.json``)."""
    return Path(path).with_suffix(".json")


def package_versions() -> dict[str, str]:
    """Versions of python, torch, numpy, smalltrain and optional packages (never imported).

    Read once per process (70 ms of package metadata on a 2-core machine, at every
    checkpoint before; a job's spare process reads them before its job comes, issue 26)."""
    return dict(_package_versions())


@functools.cache
def _package_versions() -> dict[str, str]:
    import importlib.metadata  # ~15 ms: only checkpoint writers need it, not the CLI's start-up

    versions = {"python": platform.python_version()}
    for name in ("torch", "numpy", "smalltrain", *_OPTIONAL_PACKAGES):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


# --- listing and choosing -------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint's sidecar (or, failing that, its file name) says about it."""

    path: Path
    epoch: int
    global_step: int
    metrics: Mapping[str, float] = field(default_factory=dict)
    reason: str = "unknown"
    sha256: str | None = None
    time: float | None = None
    size: int | None = None

    @property
    def verified(self) -> bool:
        """Whether a sidecar records the file's sha256 (so its content can be checked)."""
        return self.sha256 is not None


def _read_info(path: Path, epoch: int, global_step: int) -> CheckpointInfo:
    try:
        side = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
        metrics = {str(k): float(v) for k, v in dict(side.get("metrics") or {}).items()}
        return CheckpointInfo(
            path=path,
            epoch=int(side.get("epoch", epoch)),
            global_step=int(side.get("global_step", global_step)),
            metrics=metrics,
            reason=str(side.get("reason", "unknown")),
            sha256=side.get("sha256"),
            time=side.get("time"),
            size=int(side["size"]) if side.get("size") is not None else None,
        )
    except (OSError, ValueError, TypeError, AttributeError):
        # Missing or damaged sidecar: the file name still gives epoch and step.
        return CheckpointInfo(path=path, epoch=epoch, global_step=global_step)


def list_checkpoints(directory: Path) -> list[CheckpointInfo]:
    """List the checkpoints in ``directory``, oldest to newest by (global_step, epoch)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    infos = []
    for path in directory.iterdir():
        match = _NAME_RE.match(path.name)
        if match and path.is_file():
            infos.append(_read_info(path, int(match.group(1)), int(match.group(2))))
    return sorted(infos, key=lambda i: (i.global_step, i.epoch, i.path.name))


def latest_checkpoint(directory: Path) -> Path | None:
    """Return the newest checkpoint in ``directory`` (not validated), or None."""
    infos = list_checkpoints(directory)
    return infos[-1].path if infos else None


def verify(info: CheckpointInfo) -> str | None:
    """Why the checkpoint's file does not match its sidecar (size, sha256), or None if it does.

    A checkpoint whose sidecar records no sha256 (a missing or old sidecar) cannot be checked
    and passes here; ``CheckpointInfo.verified`` tells it apart, and the choosers below use
    such a checkpoint only when no verified one exists.
    """
    try:
        size = info.path.stat().st_size
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    if size == 0:
        return "is empty (0 bytes)"
    if info.size is not None and size != info.size:
        return f"is {size} bytes, its sidecar says {info.size}"
    if info.sha256 is not None and sha256_file(info.path) != info.sha256:
        return "sha256 does not match its sidecar"
    return None


def usable_checkpoints(directory: Path) -> list[CheckpointInfo]:
    """Checkpoints that pass ``verify``, in the order to try them: verified ones newest
    first, then unverified ones (no sidecar sha256) newest first."""
    infos = [i for i in reversed(list_checkpoints(directory)) if verify(i) is None]
    return [i for i in infos if i.verified] + [i for i in infos if not i.verified]


def newest_verified(directory: Path) -> Path | None:
    """The newest checkpoint in ``directory`` whose file matches its sidecar's sha256, or,
    when none has a usable sidecar, the newest unverified one; None if there is neither.

    Chosen from sidecars and hashes only (no unpickling), so it is cheap and torch-free. The
    loader still validates the content when the run resumes from it. ``choose_checkpoint``
    also says when the choice is unverified.
    """
    point = choose_checkpoint(directory)
    return point.path if point is not None else None


@dataclass(frozen=True)
class CheckpointChoice:
    """The checkpoint a run resumes from; ``note`` says why it could not be verified."""

    path: Path
    note: str | None = None


def choose_checkpoint(directory: Path) -> CheckpointChoice | None:
    """The checkpoint to resume from (see ``usable_checkpoints``), or None.

    An unverified choice carries a note for the user: its sidecar is missing, so its sha256
    could not be checked, and it is used because no verified checkpoint exists.
    """
    usable = usable_checkpoints(directory)
    if not usable:
        return None
    best = usable[0]
    if best.verified:
        return CheckpointChoice(best.path)
    note = (
        f"{best.path.name} is unverified: its sidecar {sidecar_path(best.path).name} is "
        "missing or damaged, so its sha256 could not be checked; it is used because no "
        "verified checkpoint exists"
    )
    return CheckpointChoice(best.path, note)


# --- retention ----------------------------------------------------------------------------------


def _best(infos: list[CheckpointInfo], monitor: str, mode: str) -> CheckpointInfo | None:
    scored = [i for i in infos if monitor in i.metrics and math.isfinite(i.metrics[monitor])]
    if not scored:
        return None
    pick = min if mode == "min" else max
    return pick(scored, key=lambda i: i.metrics[monitor])


def manage_checkpoints(
    directory: Path,
    *,
    keep_last: int,
    monitor: str = "val/loss",
    mode: str = "min",
    protect: Iterable[Path] = (),
) -> list[Path]:
    """Delete old checkpoints (and sidecars), keeping the newest, the best and protected ones.

    Kept: the ``keep_last`` newest (the newest always, even with ``keep_last=0``), the best by
    ``monitor`` (NaN/inf or missing scores never count), and every path in ``protect``, such as
    the checkpoint a run resumed from. Call it after writing the new checkpoint.

    Returns:
        The deleted ``.pt`` paths. A file that cannot be deleted is left and not listed.

    Raises:
        ValueError: ``keep_last`` < 0 or ``mode`` is not "min"/"max".
    """
    if keep_last < 0:
        raise ValueError(f"keep_last={keep_last}: must be >= 0")
    if mode not in ("min", "max"):
        raise ValueError(f"mode={mode!r}: must be 'min' or 'max'")
    infos = list_checkpoints(directory)
    if not infos:
        return []
    keep = {i.path.resolve() for i in infos[-max(keep_last, 1) :]}
    best = _best(infos, monitor, mode)
    if best is not None:
        keep.add(best.path.resolve())
    keep.update(Path(p).resolve() for p in protect)
    deleted = []
    for info in infos:
        if info.path.resolve() in keep:
            continue
        try:
            info.path.unlink(missing_ok=True)
        except OSError:
            continue
        sidecar_path(info.path).unlink(missing_ok=True)
        deleted.append(info.path)
    return deleted
