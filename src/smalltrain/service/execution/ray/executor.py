"""The ray executor: each attempt of a job runs in a Ray actor on a node Ray chooses.

Same one method as the other executors, ``execute(spec, on_event, cancel) -> AttemptOutcome``,
and the same task code (``attempt.run_task``, inside ``ray.node.AttemptActor``). Ray places the
actor on a node with the CPUs and GPUs the job asks for (``service.placement``); smalltrain
schedules nothing across machines itself.

- **Infeasible requests fail at once.** Ray would leave an actor that no node can host pending
  forever; the request is checked against the live nodes first (and again while it waits, in
  case the node that could host it leaves), and the error names what was asked and what the
  cluster has.
- **Events and files.** The head long-polls the actor: each answer carries the task's events
  (delivered to ``on_event``, so they land in the same sink and database as a local job's) and
  the run-folder files that changed, which are written atomically into the job's run folder in
  the head's home *before* the events that mention them. Only the head writes its home and its
  database.
- **Data.** The dataset and files the config names travel through the object store
  (``ray_shipping``), cached on each node; a resumed attempt also gets the run folder.
- **Faults.** A node or worker that dies ends the attempt "interrupted" with the reason; the
  scheduler retries it from its newest checkpoint on any node (``service.retry``). A cancel
  sets the actor's cooperative flag (the task checkpoints and stops); after ``grace_s`` the
  actor is killed (``ray.kill``: ``ray.cancel`` cannot interrupt a task inside a C call or a
  sleep, ray #32954). If the head itself dies, Ray ends the actors it owns, and the restarted
  scheduler finds the jobs INTERRUPTED and resumable.

The head connects with ``ray.init(address)``: an address, ``"auto"``, ``$RAY_ADDRESS``, or none
(a local Ray on this machine).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import NodeDiedError, ObjectLostError, RayActorError

from smalltrain.engine.context import CancelMode, CancelToken
from smalltrain.engine.events import Event, LogEvent, event_from_dict
from smalltrain.engine.fsutil import atomic_write_bytes
from smalltrain.errors import ConfigError
from smalltrain.service.execution.attempt import (
    EXTRA_TASKS_ENV,
    AttemptOutcome,
    AttemptSpec,
    error_line,
    traceback_summary,
)
from smalltrain.service.execution.grace import StepTimer, cancel_grace
from smalltrain.service.execution.placement import Placement
from smalltrain.service.execution.ray.address import check_address
from smalltrain.service.execution.ray.node import AttemptActor, safe_join
from smalltrain.service.execution.ray.shipping import Shipper
from smalltrain.service.execution.threads import child_env

__all__ = ["RayExecutor", "describe_nodes", "infeasible"]

#: What Ray raises when the actor, or the node under it, is gone. A large answer (a batch with
#: checkpoints) lives in its node's object store: when the node dies right after answering,
#: fetching the answer fails with ObjectLostError rather than an actor error.
_GONE = (RayActorError, ObjectLostError, NodeDiedError)
_ACTOR = None
_ACTOR_LOCK = threading.Lock()


def _actor_class() -> Any:
    """``AttemptActor`` as a threaded Ray actor class (made once)."""
    global _ACTOR
    with _ACTOR_LOCK:
        if _ACTOR is None:
            _ACTOR = ray.remote(AttemptActor)
        return _ACTOR


class RayExecutor:
    """Runs each attempt of a job in a Ray actor (see the module docstring).

    Args:
        address: the cluster to join ("host:port", "auto", "ray://..."); None: ``$RAY_ADDRESS``
            or a local Ray started in this process.
        grace_s: seconds a cancelled job may take to checkpoint and stop before its actor is
            killed.
        poll_s: the longest the head waits between two polls of a running actor.
        recheck_s: how often a job that waits for a node checks it can still be placed.
        init_kwargs: more keyword arguments for ``ray.init``.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        grace_s: float = 30.0,
        poll_s: float = 0.25,
        recheck_s: float = 2.0,
        init_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self.address = address
        self.grace_s = grace_s
        self.poll_s = poll_s
        self.recheck_s = recheck_s
        self.init_kwargs = dict(init_kwargs or {})
        self.shipper = Shipper()
        #: (node id, sha256) of every dataset a node fetched from the object store.
        self.fetches: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def connect(self) -> None:
        """Join the cluster (once per process).

        Raises:
            ClusterError: a "HOST:PORT" address where nothing answers.
        """
        with self._lock:
            if ray.is_initialized():
                return
            check_address(self.address)
            kwargs: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
            kwargs.update(self.init_kwargs)
            ray.init(address=self.address, **kwargs)

    def execute(
        self, spec: AttemptSpec, on_event: Callable[[Event], None], cancel: CancelToken
    ) -> AttemptOutcome:
        """Run ``spec`` in a Ray actor; relay its events and files; honour ``cancel``."""
        try:
            self.connect()
            ask = _Ask.of(spec)
            problem = infeasible(spec.job_id, ask.cpus, ask.gpus, alive_nodes())
            if problem is not None:
                return AttemptOutcome("failed", error=problem)
            shipment = self.shipper.shipment(spec, ask.placement)
            actor = _actor_class().options(**ask.actor_options()).remote()
        except ConfigError as exc:
            return AttemptOutcome("failed", error=f"placement: {exc}")
        except Exception as exc:
            return AttemptOutcome("failed", error=error_line(exc), traceback=traceback_summary(exc))
        watch = _Watch(self, spec, ask, actor, on_event)
        try:
            return watch.follow(ask.local_spec(spec), shipment, cancel)
        finally:
            with contextlib.suppress(Exception):
                ray.kill(actor, no_restart=True)


@dataclasses.dataclass(frozen=True)
class _Ask:
    """What one attempt asks Ray for."""

    placement: Placement
    cpus: float
    gpus: float

    @classmethod
    def of(cls, spec: AttemptSpec) -> _Ask:
        placement = Placement.from_dict(spec.placement)
        has_gpu = any(float(n["Resources"].get("GPU", 0)) > 0 for n in alive_nodes())
        return cls(
            placement, float(placement.num_cpus or 1), placement.gpus_for(spec.device, has_gpu)
        )

    @property
    def threads(self) -> int:
        return max(1, int(self.cpus))

    def actor_options(self) -> dict[str, Any]:
        env = child_env(self.threads)
        if os.environ.get(EXTRA_TASKS_ENV):  # tasks registered on the head exist on nodes too
            env[EXTRA_TASKS_ENV] = os.environ[EXTRA_TASKS_ENV]
        return {
            "num_cpus": self.cpus,
            "num_gpus": self.gpus,
            "max_restarts": 0,
            "max_concurrency": 4,  # run, poll and cancel at once
            "runtime_env": {"env_vars": env},
        }

    def local_spec(self, spec: AttemptSpec) -> AttemptSpec:
        """The spec as the node runs it: its thread budget; "cuda:N" → the GPU Ray gave it."""
        device = spec.device
        if self.gpus > 0 and device.startswith("cuda:"):
            device = "cuda"
        limits = dataclasses.replace(spec.limits, cpu_threads=self.threads)
        return dataclasses.replace(spec, limits=limits, device=device)


def alive_nodes() -> list[dict[str, Any]]:
    """The cluster's live nodes as ``ray.nodes()`` reports them."""
    return [n for n in ray.nodes() if n.get("Alive")]


def _amount(value: float) -> str:
    return f"{value:g}"


def describe_nodes(nodes: Sequence[Mapping[str, Any]]) -> str:
    """ "2 live nodes: 10.0.0.5 (4 CPU, 1 GPU), 10.0.0.6 (8 CPU, 0 GPU)"."""
    if not nodes:
        return "no live node"
    parts = []
    for n in nodes:
        res = n.get("Resources", {})
        where = f"{n.get('NodeManagerAddress', '?')} [{str(n.get('NodeID', ''))[:8]}]"
        parts.append(
            f"{where} ({_amount(res.get('CPU', 0))} CPU, {_amount(res.get('GPU', 0))} GPU)"
        )
    return f"{len(nodes)} live node{'s' if len(nodes) != 1 else ''}: " + ", ".join(parts)


def infeasible(
    job_id: str, cpus: float, gpus: float, nodes: Sequence[Mapping[str, Any]]
) -> str | None:
    """Why no node can ever host the job (a message naming both sides), or None if one can."""
    for n in nodes:
        res = n.get("Resources", {})
        if float(res.get("CPU", 0)) >= cpus and float(res.get("GPU", 0)) >= gpus:
            return None
    return (
        f"job {job_id} asks Ray for {_amount(cpus)} CPU and {_amount(gpus)} GPU on one node, "
        f"but no node of the cluster has that; the cluster has {describe_nodes(nodes)}. Ask "
        "for less (--set num_cpus=N, --set num_gpus=N) or add a node that has it "
        "(ray start --address=HEAD:6379 --num-gpus=1)"
    )


class _Watch:
    """Head-side bookkeeping for one actor: poll, write files, relay events, cancel, kill."""

    def __init__(
        self,
        owner: RayExecutor,
        spec: AttemptSpec,
        ask: _Ask,
        actor: Any,
        on_event: Callable[[Event], None],
    ) -> None:
        self.owner = owner
        self.spec = spec
        self.ask = ask
        self.actor = actor
        self.on_event = on_event
        self.run_dir = Path(spec.run_dir)
        self.started = time.monotonic()
        self.ready_at: float | None = None
        self.where = "?"
        self.sent_mode: CancelMode | None = None
        self.cancelled_at: float | None = None
        self.kill_at: float | None = None
        self.killed = False
        self.steps = StepTimer()
        self.rechecked = self.started
        self.waiting_said = False

    def follow(
        self, spec: AttemptSpec, shipment: Mapping[str, Any], cancel: CancelToken
    ) -> AttemptOutcome:
        run = self.actor.run.remote(spec, shipment)
        poll = self.actor.poll.remote(self.owner.poll_s)
        while True:
            ready, _ = ray.wait([poll], timeout=self.owner.poll_s)
            broken = self._broken(run)
            if broken is not None:
                return broken
            if ready:
                try:
                    batch = ray.get(poll)
                except _GONE as exc:
                    return self._died(exc)
                self._apply(batch)
                if batch.get("outcome") is not None:
                    return self._finished(AttemptOutcome.from_dict(batch["outcome"]))
                poll = self.actor.poll.remote(self.owner.poll_s)
            elif self.ready_at is None:
                problem = self._waiting()
                if problem is not None:
                    return AttemptOutcome("failed", error=problem)
            outcome = self._handle_cancel(cancel)
            if outcome is not None:
                return outcome

    @staticmethod
    def _broken(run: Any) -> AttemptOutcome | None:
        """A failed outcome if ``run`` itself raised (it reports through ``poll`` otherwise)."""
        if not ray.wait([run], timeout=0)[0]:
            return None
        try:
            ray.get(run)
        except _GONE:
            return None  # the actor or its node died: ``poll`` says so, with the reason
        except Exception as exc:
            return AttemptOutcome("failed", error=error_line(exc), traceback=traceback_summary(exc))
        return None

    # -- while it waits for a node -----------------------------------------------------------

    def _waiting(self) -> str | None:
        """Recheck, now and then, that some live node can still host the job."""
        now = time.monotonic()
        if now - self.rechecked < self.owner.recheck_s:
            return None
        self.rechecked = now
        nodes = alive_nodes()
        problem = infeasible(self.spec.job_id, self.ask.cpus, self.ask.gpus, nodes)
        free = ray.available_resources()
        busy = free.get("CPU", 0) < self.ask.cpus or free.get("GPU", 0) < self.ask.gpus
        if problem is None and busy and not self.waiting_said:
            self.waiting_said = True
            self.on_event(
                LogEvent(
                    f"waiting for a Ray node with {_amount(self.ask.cpus)} CPU and "
                    f"{_amount(self.ask.gpus)} GPU free; the cluster has {describe_nodes(nodes)}"
                )
            )
        return problem

    # -- a batch from the node ---------------------------------------------------------------

    def _apply(self, batch: Mapping[str, Any]) -> None:
        if self.ready_at is None:
            self.ready_at = time.monotonic()
            node = dict(batch.get("node") or {})
            self.where = f"{node.get('host', '?')} [{str(node.get('node_id', ''))[:8]}]"
            self.on_event(
                LogEvent(
                    f"running on Ray node {self.where}, worker pid {node.get('pid', '?')}, with "
                    f"{_amount(self.ask.cpus)} CPU and {_amount(self.ask.gpus)} GPU"
                )
            )
        for node_id, sha in batch.get("fetched") or ():
            self.owner.fetches.append((node_id, sha))
        # Files first: an event that names a checkpoint arrives after the checkpoint.
        for rel, data in batch.get("files") or ():
            atomic_write_bytes(safe_join(self.run_dir, rel), data)
        for rel in batch.get("deleted") or ():
            safe_join(self.run_dir, rel).unlink(missing_ok=True)
        for data in batch.get("events") or ():
            self.steps.see(data)  # a cancel's grace must fit the step in progress and the save
            self.on_event(event_from_dict(data))

    def _finished(self, outcome: AttemptOutcome) -> AttemptOutcome:
        now = time.monotonic()
        ready = self.ready_at or now
        return dataclasses.replace(
            outcome, startup_s=ready - self.started, run_s=now - ready, exit_code=None
        )

    def _died(self, exc: Exception) -> AttemptOutcome:
        startup = (self.ready_at - self.started) if self.ready_at else None
        if self.killed:
            waited = time.monotonic() - (self.cancelled_at or time.monotonic())
            return AttemptOutcome(
                "cancelled",
                error=(
                    f"the job did not stop within {waited:.1f} s of the cancel request; its "
                    f"Ray actor on {self.where} was killed"
                ),
                startup_s=startup,
            )
        return AttemptOutcome(
            "interrupted", error=_death_reason(exc, self.where), startup_s=startup
        )

    # -- cancel ------------------------------------------------------------------------------

    def _handle_cancel(self, cancel: CancelToken) -> AttemptOutcome | None:
        """Forward a cancel to the actor (again when it escalates); kill the actor when late."""
        if not cancel.is_set():
            return None
        now = time.monotonic()
        if self.ready_at is None:  # still waiting for a node: nothing to checkpoint
            self.killed = True
            with contextlib.suppress(Exception):
                ray.kill(self.actor, no_restart=True)
            return AttemptOutcome("cancelled", error=f"{cancel.reason} before it started on Ray")
        if cancel.mode != self.sent_mode and self.sent_mode != "immediate":
            self.sent_mode = cancel.mode
            self.actor.cancel.remote(cancel.reason, cancel.mode)
            grace = cancel_grace(self.owner.grace_s, self.steps.slowest_s, cancel.mode)
            self.kill_at = now + grace if self.kill_at is None else min(self.kill_at, now + grace)
            self.cancelled_at = self.cancelled_at or now
        elif self.kill_at is not None and now >= self.kill_at and not self.killed:
            self.killed = True
            ray.kill(self.actor, no_restart=True)
        return None


def _death_reason(exc: BaseException, where: str) -> str:
    """Say in words how the actor under a job died, from Ray's error text."""
    text = str(exc)
    if "node has died" in text or "node was terminated" in text or "node is dead" in text:
        return f"the Ray node {where} running the job died"
    if isinstance(exc, (ObjectLostError, NodeDiedError)):
        return f"the Ray node {where} running the job went away (its last answer was lost)"
    detail = next(
        (line.strip() for line in text.splitlines() if "died" in line or "killed" in line),
        "",
    )
    detail = f" ({detail})" if detail else ""
    return f"the Ray worker running the job on {where} died{detail}"
