"""The node side of the ray executor: what runs on a Ray worker, with no shared storage.

- ``pack_tree`` / ``unpack_tree``: a folder as one tar blob (the dataset, a run folder to
  resume), extracted safely (no absolute paths, no ``..``, no links out of the folder).
- ``NodeCache``: a per-node folder (``$SMALLTRAIN_RAY_CACHE`` or the temp dir, then the Ray node
  id) holding datasets and files by sha256. A blob is fetched from the object store only when
  the node has no verified copy yet, under a file lock, so jobs that start together on one node
  fetch it once.
- ``RunMirror``: which files of the job's local run folder changed (or vanished) since the head
  last got them, so each checkpoint travels back once.
- ``AttemptActor``: the Ray actor. ``run`` prepares the node (dataset, files, the run folder to
  resume from), then calls the same ``run_task`` as every other executor; the task sees only
  its ``JobContext``. The head long-polls ``poll`` for events, changed files and, at the end,
  the outcome; ``cancel`` sets the job's cooperative cancel flag.

Paths inside events and results are rewritten from the node's run folder to the head's, so the
head's records name the head's files.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from smalltrain.engine.context import CancelToken, cancel_mode
from smalltrain.engine.events import (
    CheckpointSaved,
    Event,
    LogEvent,
    PreviewReady,
    StepMetrics,
    TrainingFinished,
)
from smalltrain.engine.fsutil import sha256_bytes
from smalltrain.engine.locks import FileLock
from smalltrain.service.execution.attempt import (
    AttemptOutcome,
    AttemptSpec,
    apply_limits,
    error_line,
    register_extra_tasks,
    run_task,
    traceback_summary,
)

__all__ = [
    "CACHE_ENV",
    "AttemptActor",
    "NodeCache",
    "RunMirror",
    "pack_tree",
    "rebase",
    "unpack_tree",
]

CACHE_ENV = "SMALLTRAIN_RAY_CACHE"
#: Seconds between two mirrors of the run folder when no event names a file.
MIRROR_EVERY_S = 10.0
#: Events that name files the head must have before it reads them.
_FILE_EVENTS = frozenset({CheckpointSaved.type, PreviewReady.type, TrainingFinished.type})
_COMPLETE = ".complete"
#: File names in a run folder that never travel: temporary files of atomic writes, pid files.
_SKIP_SUFFIXES = (".tmp", ".pid")


# --- packing -------------------------------------------------------------------------------


def pack_tree(root: Path, *, follow_links: bool = True) -> bytes:
    """The regular files under ``root`` as an uncompressed tar (sorted, so the same folder gives
    the same bytes and hash). Links to files are stored as the files they point to, unless
    ``follow_links`` is false, when they are left out."""
    root = Path(root)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(root.rglob("*")):
            if path.is_symlink() and not follow_links:
                continue
            if not path.is_file() or path.name.endswith(_SKIP_SUFFIXES):
                continue
            data = path.read_bytes()
            info = tarfile.TarInfo(path.relative_to(root).as_posix())
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def unpack_tree(blob: bytes, dest: Path) -> list[str]:
    """Extract a ``pack_tree`` blob into ``dest``; return the relative paths written.

    Raises:
        ValueError: a member is not a regular file or would land outside ``dest``.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r") as tar:
        for member in tar.getmembers():
            target = safe_join(dest, member.name)
            if not member.isfile():
                raise ValueError(f"{member.name}: only regular files may travel, not links")
            source = tar.extractfile(member)
            if source is None:
                raise ValueError(f"{member.name}: cannot be read from the blob")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read())
            written.append(member.name)
    return written


def safe_join(root: Path, rel: str) -> Path:
    """``root / rel``, refusing absolute paths and ``..`` (a path must stay inside ``root``).

    Raises:
        ValueError: ``rel`` would leave ``root``.
    """
    parts = Path(rel).parts
    if not rel or Path(rel).is_absolute() or ".." in parts:
        raise ValueError(f"{rel!r}: a path from another machine must stay inside {root}")
    return Path(root) / rel


# --- the node's cache ----------------------------------------------------------------------


def node_id() -> str:
    """This Ray node's id (the host name outside Ray).

    Ray is only asked when this process already runs it: ``get_runtime_context`` would start
    a local Ray otherwise.
    """
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        with contextlib.suppress(Exception):
            return str(ray.get_runtime_context().get_node_id())
    return socket.gethostname()


class NodeCache:
    """Datasets and files on one node, by sha256 (see the module docstring).

    Args:
        root: the cache folder; by default ``$SMALLTRAIN_RAY_CACHE`` (or the temp dir's
            ``smalltrain-ray-<uid>``) and then the node id, so that nodes sharing a disk (a test
            cluster on one machine) still keep their own copies.
    """

    def __init__(self, root: Path | None = None) -> None:
        if root is None:
            base = os.environ.get(CACHE_ENV) or Path(tempfile.gettempdir()) / _user_dir()
            root = Path(base) / node_id()[:16]
        self.root = Path(root)

    def entry(
        self, kind: str, sha: str, fetch: Callable[[], bytes], unpack: bool
    ) -> tuple[Path, bool]:
        """The verified local copy of blob ``sha``: fetched (``fetch()``), checked and stored
        once, then reused. Returns (its folder, whether it was fetched now).

        Raises:
            ValueError: the fetched bytes do not hash to ``sha``.
        """
        final = self.root / kind / sha
        if (final / _COMPLETE).is_file():
            return final, False
        with FileLock(self.root / "locks" / f"{kind}-{sha}.lock"):
            if (final / _COMPLETE).is_file():  # another job on this node fetched it meanwhile
                return final, False
            blob = fetch()
            got = sha256_bytes(blob)
            if got != sha:
                raise ValueError(
                    f"the {kind} blob that reached node {node_id()[:8]} hashes to {got[:12]}, "
                    f"not {sha[:12]}: it was damaged on the way; the job can be retried"
                )
            tmp = Path(tempfile.mkdtemp(prefix=f".{sha[:12]}-", dir=self._parent(final)))
            try:
                if unpack:
                    unpack_tree(blob, tmp)
                else:
                    (tmp / "blob").write_bytes(blob)
                (tmp / _COMPLETE).write_text(sha + "\n", encoding="utf-8")
                if final.exists():
                    shutil.rmtree(final)  # an incomplete copy left by a crash
                os.replace(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return final, True

    @staticmethod
    def _parent(path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.parent

    def run_dir(self, job_id: str) -> Path:
        """A fresh local run folder for one attempt of ``job_id``."""
        path = self.root / "runs" / job_id
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path

    def home(self) -> Path:
        """A smalltrain home for tasks on this node (their cache, third-party config)."""
        path = self.root / "home"
        (path / "cache").mkdir(parents=True, exist_ok=True)
        return path


def _user_dir() -> str:
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return f"smalltrain-ray-{uid}"


# --- the run folder, mirrored back ---------------------------------------------------------


class RunMirror:
    """Tracks which files of a local run folder the head already has."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.sent: dict[str, tuple[int, int]] = {}

    def _scan(self) -> dict[str, tuple[int, int]]:
        found = {}
        for path in self.root.rglob("*"):
            if path.is_symlink() or not path.is_file() or path.name.endswith(_SKIP_SUFFIXES):
                continue
            if path.name.startswith("."):  # a temporary file of an atomic write
                continue
            try:
                st = path.stat()
            except OSError:
                continue
            found[path.relative_to(self.root).as_posix()] = (st.st_size, st.st_mtime_ns)
        return found

    def prime(self) -> None:
        """Count what is there now as already sent (the files the head shipped here)."""
        self.sent = self._scan()

    def changes(self) -> tuple[list[tuple[str, bytes]], list[str]]:
        """(changed files as (relative path, bytes), deleted relative paths) since last time.

        Checkpoint sidecars (``.json``) come after the files they describe.
        """
        now = self._scan()
        changed = sorted(
            (rel for rel, stamp in now.items() if self.sent.get(rel) != stamp),
            key=lambda rel: (rel.endswith(".json"), rel),
        )
        files = []
        for rel in changed:
            try:
                files.append((rel, (self.root / rel).read_bytes()))
            except OSError:  # deleted since the scan: it shows up as deleted next time
                now.pop(rel, None)
        deleted = sorted((rel for rel in self.sent if rel not in now), key=_delete_order)
        self.sent = now
        return files, deleted


def _delete_order(rel: str) -> tuple[bool, str]:
    """Delete a checkpoint before its sidecar (a sidecar alone is never taken for one)."""
    return (rel.endswith(".json"), rel)


def rebase(value: Any, old: str, new: str) -> Any:
    """``value`` with every string path under ``old`` moved under ``new`` (dicts, lists and
    tuples are walked)."""
    if isinstance(value, str):
        if value == old or value.startswith(old + os.sep):
            return new + value[len(old) :]
        return value
    if isinstance(value, Mapping):
        return {k: rebase(v, old, new) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(rebase(v, old, new) for v in value)
    return value


# --- the actor -----------------------------------------------------------------------------


class AttemptActor:
    """One attempt of one job on a Ray node (used as a threaded Ray actor)."""

    def __init__(self) -> None:
        self.token = CancelToken()
        self.cache = NodeCache()
        self._events: list[dict[str, Any]] = []
        self._urgent = threading.Condition()
        self._has_urgent = False
        self._outcome: dict[str, Any] | None = None
        self._mirror: RunMirror | None = None
        self._local = ""
        self._head = ""
        self._mirrored_at = 0.0
        self._fetches: list[tuple[str, str]] = []
        self._where = self.node()

    # -- called by the head ----------------------------------------------------------------

    def node(self) -> dict[str, Any]:
        """Where this actor runs: node id, host, pid."""
        return {"node_id": node_id(), "host": socket.gethostname(), "pid": os.getpid()}

    def cancel(self, reason: str, mode: str) -> None:
        """Ask the task to checkpoint and stop (the job's cooperative cancel flag)."""
        self.token.cancel(reason, cancel_mode(mode))

    def run(self, spec: AttemptSpec, shipment: Mapping[str, Any]) -> None:
        """Prepare the node and train; the outcome is handed to the head by ``poll``."""
        try:
            local = self._prepare(spec, shipment)
        except Exception as exc:
            outcome = AttemptOutcome(
                "failed", error=error_line(exc), traceback=traceback_summary(exc)
            )
        else:
            outcome = run_task(local, self._emit, self.token)
        data = rebase(outcome.to_dict(), self._local, self._head) if self._local else None
        with self._urgent:
            self._outcome = data or outcome.to_dict()
            self._has_urgent = True
            self._urgent.notify_all()

    def poll(self, wait_s: float) -> dict[str, Any]:
        """Events, changed run files and (once training ended) the outcome, after waiting up to
        ``wait_s`` for something other than step metrics."""
        with self._urgent:
            self._urgent.wait_for(lambda: self._has_urgent, timeout=wait_s)
            self._has_urgent = False
            outcome = self._outcome  # read first: every event before it is taken below
            events, self._events = self._events, []
            fetched, self._fetches = self._fetches, []
        # Files travel with the events that name them (a checkpoint, previews, the end), and
        # every MIRROR_EVERY_S for the rest (e.g. the best model so far): not every epoch.
        named = outcome is not None or any(e.get("type") in _FILE_EVENTS for e in events)
        files: list[tuple[str, bytes]] = []
        deleted: list[str] = []
        due = time.monotonic() - self._mirrored_at > MIRROR_EVERY_S
        if self._mirror is not None and (named or due):
            files, deleted = self._mirror.changes()
            self._mirrored_at = time.monotonic()
        if outcome is not None and self._local:
            shutil.rmtree(self._local, ignore_errors=True)  # the head has it all now
        return {
            "node": self._where,
            "events": events,
            "files": files,
            "deleted": deleted,
            "fetched": fetched,
            "outcome": outcome,
        }

    # -- on the node -----------------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        data = rebase(event.to_dict(), self._local, self._head) if self._local else event.to_dict()
        with self._urgent:
            self._events.append(data)
            if not isinstance(event, StepMetrics):
                self._has_urgent = True
                self._urgent.notify_all()

    def _prepare(self, spec: AttemptSpec, shipment: Mapping[str, Any]) -> AttemptSpec:
        """Tasks, limits, dataset, files and the local run folder; the spec as seen here."""
        register_extra_tasks()
        apply_limits(spec.limits, spec.device)
        run_dir = self.cache.run_dir(spec.job_id)
        self._local, self._head = str(run_dir), str(spec.run_dir)
        seed = shipment.get("run_dir")
        if seed is not None:
            unpack_tree(_get(seed), run_dir)
        self._mirror = RunMirror(run_dir)
        self._mirror.prime()
        config = dict(spec.config)
        for key, item in dict(shipment.get("files") or {}).items():
            folder, _ = self.cache.entry("files", item["sha256"], _getter(item["ref"]), False)
            config[key] = str(_named_link(folder, item["name"]))
        resume = (
            rebase(str(spec.resume_from), self._head, self._local) if spec.resume_from else None
        )
        return replace(
            spec,
            config=config,
            dataset_path=self._dataset(spec, shipment.get("dataset") or {}),
            run_dir=run_dir,
            resume_from=Path(resume) if resume else None,
            cache_dir=self.cache.home() / "cache",
        )

    def _dataset(self, spec: AttemptSpec, item: Mapping[str, Any]) -> Path:
        if not item.get("ref"):
            path = Path(spec.dataset_path)
            if not path.exists():
                raise FileNotFoundError(
                    f"dataset {path} does not exist on Ray node {node_id()[:8]} "
                    f"({socket.gethostname()}); with ship_dataset=false every node must be able "
                    "to read the dataset's path. Leave ship_dataset on to send it through Ray"
                )
            return path
        sha = str(item["sha256"])
        started = time.monotonic()
        folder, fetched = self.cache.entry("datasets", sha, _getter(item["ref"]), True)
        if fetched:
            with self._urgent:
                self._fetches.append((node_id(), sha))
        size = f"{int(item.get('size', 0)) / 2**20:.1f} MiB"
        how = (
            f"fetched through Ray's object store in {time.monotonic() - started:.1f} s"
            if fetched
            else "found in the node's cache"
        )
        self._emit(LogEvent(f"dataset {sha[:12]} ({size}) {how} on node {node_id()[:8]}: {folder}"))
        entry = str(item.get("entry") or ".")
        return folder if entry == "." else safe_join(folder, entry)


def _named_link(folder: Path, name: str) -> Path:
    """The cached blob of a shipped file under its own file name (suffixes matter to loaders)."""
    target = folder / Path(name).name
    if not target.exists():
        try:
            os.link(folder / "blob", target)
        except FileExistsError:
            pass  # another job on this node made it meanwhile
        except OSError:
            shutil.copyfile(folder / "blob", target)
    return target


def _getter(ref: Any) -> Callable[[], bytes]:
    return lambda: _get(ref)


def _get(ref: Any) -> bytes:
    """The bytes behind an object ref (already bytes outside Ray, in unit tests)."""
    if isinstance(ref, (bytes, bytearray)):
        return bytes(ref)
    import ray

    return bytes(ray.get(ref))
