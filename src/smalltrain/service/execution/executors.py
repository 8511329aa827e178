"""Where a job runs: one strategy interface, four strategies, one way to run the task.

Every executor has one method, ``execute(spec, on_event, cancel) -> AttemptOutcome``; it blocks
until the job ends and never raises for a failure of the task itself (that is an outcome).
Every executor ends in ``attempt.run_task`` (as rq's workers all end in ``perform_job``): the
task's config, limits, cache folder, events log and error translation (a full disk, a GPU out
of memory) are the same wherever a job runs.

- ``InlineExecutor``: ``run_task`` in the caller's thread. For tests and debugging.
- ``ThreadExecutor``: ``run_task`` on a daemon thread (cancel is cooperative only).
- ``ProcessExecutor`` (the manager's default): ``run_task`` in a child process per job
  (``attempt.child_main``), forked from a warm server that has torch and the tasks loaded
  (``warm``; ``spawn``-ed where that is off). Events cross a pipe as ``Event.to_dict()``;
  cancel crosses a second pipe. A cancel is cooperative first; after ``grace_s`` the child is
  sent SIGTERM, then SIGKILL. A child that dies without its final message yields a FAILED
  outcome that says, in words, how it died.
- ``RayExecutor`` ("ray", in ``execution/ray/``): ``run_task`` in a Ray actor on a node.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import multiprocessing.connection as mpc
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psutil

from smalltrain.engine.context import CancelMode, CancelToken
from smalltrain.engine.events import Event, event_from_dict
from smalltrain.engine.locks import pid_alive
from smalltrain.service.execution.attempt import (
    EXTRA_TASKS_ENV,
    AttemptOutcome,
    AttemptSpec,
    child_main,
    describe_exit,
    register_extra_tasks,
    run_task,
    spare_main,
)
from smalltrain.service.execution.grace import StepTimer, cancel_grace
from smalltrain.service.execution.threads import child_environment, job_nice
from smalltrain.service.execution.warm import spare_enabled, warm_context

__all__ = [
    "EXTRA_TASKS_ENV",
    "EXECUTORS",
    "AttemptOutcome",
    "AttemptSpec",
    "Executor",
    "InlineExecutor",
    "ProcessExecutor",
    "ThreadExecutor",
    "describe_exit",
    "make_executor",
    "read_pid_file",
    "register_extra_tasks",
    "run_task",
]


PID_FILE = "process.pid"


class Executor(Protocol):
    """Runs one attempt of a job and blocks until it ends."""

    def execute(
        self, spec: AttemptSpec, on_event: Callable[[Event], None], cancel: CancelToken
    ) -> AttemptOutcome:
        """Run ``spec``; deliver each event to ``on_event``; honour ``cancel``."""
        ...


class InlineExecutor:
    """Runs the task in the caller's thread: no isolation, simplest to debug."""

    def execute(
        self, spec: AttemptSpec, on_event: Callable[[Event], None], cancel: CancelToken
    ) -> AttemptOutcome:
        """Run ``spec`` here and now."""
        return run_task(spec, on_event, cancel)


class ThreadExecutor:
    """Runs ``run_task`` on a daemon thread and waits for it. A thread cannot be killed: a
    cancel is cooperative only. The job's limits reach the task in its JobContext; the
    process-wide ones (torch threads, the GPU memory fraction) are applied only in a job's
    own process (the process executor).

    Args:
        poll_s: how often the waiting caller wakes (so that Ctrl-C reaches it).
    """

    def __init__(self, poll_s: float = 0.1) -> None:
        self.poll_s = poll_s

    def execute(
        self, spec: AttemptSpec, on_event: Callable[[Event], None], cancel: CancelToken
    ) -> AttemptOutcome:
        """Run ``spec`` on a thread of its own and wait for its outcome."""
        ended: list[AttemptOutcome] = []
        thread = threading.Thread(
            target=lambda: ended.append(run_task(spec, on_event, cancel)),
            name=f"smalltrain-job-{spec.job_id}",
            daemon=True,
        )
        thread.start()
        while thread.is_alive():
            thread.join(self.poll_s)
        if ended:
            return ended[0]
        return AttemptOutcome("failed", error="the training thread ended without an outcome")


# --- process executor ----------------------------------------------------------------------


class ProcessExecutor:
    """Runs each job in a fresh child process (the manager's default).

    The child is forked from the warm start's server (``warm``: torch and the tasks' modules
    already imported, started once per process), or ``spawn``-ed with ``warm=False``, with
    ``SMALLTRAIN_WARM_START=0``, or off Linux. Either way it receives the job's environment
    (this process's, plus the thread budget) and runs ``attempt.child_main``.

    **The spare.** Where the warm start is on, the executor keeps one child forked ahead of
    its job (``attempt.spare_main``): it has run a tiny CPU-only forward/backward, optimizer
    step, SVD and save (``warm.warm_up_torch``: torch's lazy initialisation, 0.5-1 s of a new
    process's first step) and waits on its control pipe. The next job is sent to it (its
    spec and environment; the limits are applied there, after the message, as in any child)
    instead of forking a new child; a new spare is forked when that job ends, so that its
    warm-up never competes with a job's first steps. Jobs that start while the spare is in use
    fork as before. ``close()`` (the scheduler's shutdown) ends the spare; so does this
    process's exit (the pipe closes). ``SMALLTRAIN_SPARE_PROCESS=0`` turns it off.

    Job processes run ``nice`` (``threads.job_nice``: 10 unless ``SMALLTRAIN_JOB_NICE`` says
    otherwise), so that the faces stay responsive while a job keeps the cores busy.

    As with ``spawn``, the child imports the caller's main module: a script that trains
    through this executor must guard its entry point with ``if __name__ == "__main__":``.
    The child's pid is written to ``run_dir/process.pid`` while it runs, so that a scheduler
    restarted after a crash can wait for an orphaned child.

    Args:
        grace_s: seconds a cancelled child may take to checkpoint and stop before SIGTERM; a
            child whose steps are slow gets ``grace.STEP_GRACE_FACTOR`` times its slowest step if
            that is longer.
        term_s: seconds after SIGTERM before SIGKILL.
        poll_s: how often the parent checks ``cancel`` while no message arrives.
        orphan_grace_s: seconds a child whose parent died may take to checkpoint before exiting.
        passive_wait: start children with ``OMP_WAIT_POLICY=PASSIVE`` (see ``service.threads``).
        warm: fork children from the warm start's server where it is available.
        spare: keep a warmed-up spare child ready (with ``warm`` only; None:
            ``SMALLTRAIN_SPARE_PROCESS``, on unless "0").
        nice: lower the job processes' CPU priority by this much (None: ``job_nice()``).
    """

    def __init__(
        self,
        grace_s: float = 30.0,
        *,
        term_s: float = 3.0,
        poll_s: float = 0.05,
        orphan_grace_s: float = 10.0,
        passive_wait: bool = True,
        warm: bool = True,
        spare: bool | None = None,
        nice: int | None = None,
    ) -> None:
        self.grace_s = grace_s
        self.term_s = term_s
        self.poll_s = poll_s
        self.orphan_grace_s = orphan_grace_s
        self.passive_wait = passive_wait
        self.warm = warm
        self.spare = warm and (spare_enabled() if spare is None else spare)
        self.nice = job_nice() if nice is None else nice
        self._spawn = multiprocessing.get_context("spawn")
        self._spare: _Spare | None = None
        self._spare_lock = threading.Lock()
        self._refilling: threading.Thread | None = None
        self._closed = False
        _EXECUTORS.add(self)

    def start_method(self) -> str:
        """ "forkserver" (the warm start) or "spawn": how the next child will start. Starts the
        warm server if it is not running yet (and forks the spare), so a face may call it early
        to have it ready."""
        ctx = warm_context(self.passive_wait) if self.warm else None
        if ctx is not None:
            self._closed = False
            self._refill_soon(ctx)
        return "spawn" if ctx is None else ctx.get_start_method()

    def close(self) -> None:
        """End the spare child, if any (the scheduler's shutdown). ``start_method`` or the next
        job makes a new one."""
        with self._spare_lock:
            spare, self._spare = self._spare, None
            self._closed = True
        if spare is not None:
            spare.end(self.term_s)

    def _refill_soon(self, ctx: multiprocessing.context.BaseContext) -> None:
        """``_refill`` on a thread: the first fork waits for the server's imports (seconds)."""
        if self.spare:
            thread = threading.Thread(
                target=self._refill, args=(ctx,), name="smalltrain-spare", daemon=True
            )
            self._refilling = thread
            thread.start()

    def wait_for_spare(self, timeout: float | None = None) -> int | None:
        """Wait until the spare child that is being forked is there; its pid (None: none)."""
        thread = self._refilling
        if thread is not None:
            thread.join(timeout)
        with self._spare_lock:
            spare = self._spare
        return spare.proc.pid if spare is not None and spare.proc.is_alive() else None

    def _refill(self, ctx: multiprocessing.context.BaseContext) -> None:
        """Fork a spare child if there is none (or it died)."""
        if not self.spare:
            return
        with self._spare_lock:
            if self._closed or (self._spare is not None and self._spare.proc.is_alive()):
                return
            events_r, events_w = ctx.Pipe(duplex=False)
            control_r, control_w = ctx.Pipe(duplex=False)
            proc = ctx.Process(  # type: ignore[attr-defined]
                target=spare_main,
                args=(events_w, control_r, self.orphan_grace_s, self.nice),
                name="smalltrain-spare",
                daemon=False,
            )
            proc.start()
            events_w.close()
            control_r.close()
            self._spare = _Spare(proc, events_r, control_w)

    def _take_spare(self) -> _Spare | None:
        with self._spare_lock:
            spare, self._spare = self._spare, None
        if spare is not None and spare.proc.is_alive():
            return spare
        if spare is not None:
            spare.end(self.term_s)
        return None

    def execute(
        self, spec: AttemptSpec, on_event: Callable[[Event], None], cancel: CancelToken
    ) -> AttemptOutcome:
        """Start a child for ``spec``, relay its events, and wait for its final message."""
        started = time.monotonic()
        ctx = warm_context(self.passive_wait) if self.warm else None
        mp = ctx or self._spawn
        self._closed = False
        spare = self._take_spare() if ctx is not None else None
        # The thread budget must be in the child's environment before torch loads there: a
        # spawned child copies it at start, a forked one is sent it (see ``warm``).
        with child_environment(spec.limits.cpu_threads, self.passive_wait):
            environ = dict(os.environ) if mp is not self._spawn else None
            if spare is not None:
                proc, events_r, control_w = spare.proc, spare.events, spare.control
                job = {"op": "job", "spec": spec, "environ": environ}
                try:
                    control_w.send(job)
                except OSError:  # it died just now: a child of its own, as without a spare
                    spare.end(self.term_s)
                    spare = None
            if spare is None:
                events_r, events_w = mp.Pipe(duplex=False)
                control_r, control_w = mp.Pipe(duplex=False)
                proc = mp.Process(
                    target=child_main,
                    args=(spec, events_w, control_r, self.orphan_grace_s, environ, self.nice),
                    name=f"smalltrain-job-{spec.job_id}",
                    daemon=False,
                )
                proc.start()
                events_w.close()
                control_r.close()
        pid_file = _write_pid_file(Path(spec.run_dir), proc.pid)
        watch = _ChildWatch(proc, control_w, self, started)
        try:
            outcome = watch.relay(events_r, on_event, cancel)
        finally:
            watch.reap()
            events_r.close()
            control_w.close()
            pid_file.unlink(missing_ok=True)
            if ctx is not None:  # after the job, so that its warm-up never slows a job's start
                self._refill_soon(ctx)
        return outcome


@dataclass
class _Spare:
    """A spare child (``attempt.spare_main``) and the parent's ends of its two pipes."""

    proc: Any
    events: mpc.Connection
    control: mpc.Connection

    def end(self, term_s: float) -> None:
        """Close its pipes and stop it (it has no job: nothing of value to lose)."""
        self.control.close()
        self.events.close()
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(timeout=term_s)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


_EXECUTORS: weakref.WeakSet[ProcessExecutor] = weakref.WeakSet()


@atexit.register
def _end_spares() -> None:
    """At exit, before multiprocessing joins its children (it would wait on a spare forever:
    atexit runs this first, registered after multiprocessing's own hook)."""
    for executor in list(_EXECUTORS):
        with contextlib.suppress(Exception):
            executor.close()


def _process_started(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def _write_pid_file(run_dir: Path, pid: int | None) -> Path:
    """Record the child's pid and start time in the run folder, so that a scheduler restarted
    after a crash can wait for an orphaned child before it resumes the job."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / PID_FILE
    started = _process_started(pid) if pid else None
    path.write_text(f"{pid} {started}\n", encoding="utf-8")
    return path


def read_pid_file(run_dir: Path) -> int | None:
    """The pid of ``run_dir``'s training process if that very process is still alive.

    A recycled pid (another process started since) gives None, so that it is never killed.
    """
    try:
        pid_text, started = (Path(run_dir) / PID_FILE).read_text(encoding="utf-8").split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    now = _process_started(pid)
    if now is None or started == "None" or abs(now - float(started)) > 0.01:
        return None
    return pid if pid_alive(pid) else None  # an exited (zombie) child counts as gone


class _ChildWatch:
    """Parent-side bookkeeping for one child: relay messages, forward cancel, kill late."""

    def __init__(
        self,
        proc: Any,
        control: mpc.Connection,
        owner: ProcessExecutor,
        started: float,
    ) -> None:
        self.proc = proc
        self.control = control
        self.owner = owner
        self.started = started
        self.startup_s: float | None = None
        self.sent_mode: CancelMode | None = None
        self.cancelled_at: float | None = None
        self.kill_at: float | None = None
        self.signalled: str | None = None
        self.steps = StepTimer()

    def relay(
        self, conn: mpc.Connection, on_event: Callable[[Event], None], cancel: CancelToken
    ) -> AttemptOutcome:
        while True:
            ready = mpc.wait([conn, self.proc.sentinel], timeout=self.owner.poll_s)
            if conn in ready:
                try:
                    kind, payload = conn.recv()
                except (EOFError, OSError):
                    return self._died()
                if kind == "event":
                    self.steps.see(payload)
                    on_event(event_from_dict(payload))
                elif kind == "ready":
                    self.startup_s = time.monotonic() - self.started
                elif kind == "outcome":
                    ran = time.monotonic() - self.started - (self.startup_s or 0.0)
                    return self._finished(AttemptOutcome.from_dict(payload), ran)
            elif self.proc.sentinel in ready and not conn.poll():
                return self._died()
            self._handle_cancel(cancel)

    def _handle_cancel(self, cancel: CancelToken) -> None:
        """Forward a cancel (again if it escalates to "immediate"); kill the child when late."""
        if not cancel.is_set():
            return
        now = time.monotonic()
        if cancel.mode != self.sent_mode and self.sent_mode != "immediate":
            self.sent_mode = cancel.mode
            with contextlib.suppress(OSError):
                self.control.send({"op": "cancel", "reason": cancel.reason, "mode": cancel.mode})
            # A slow machine's step may take longer than grace_s: the step and the save must fit.
            grace = cancel_grace(self.owner.grace_s, self.steps.slowest_s, cancel.mode)
            self.kill_at = now + grace if self.kill_at is None else min(self.kill_at, now + grace)
            self.cancelled_at = self.cancelled_at or now
            return
        if self.kill_at is None or now < self.kill_at:
            return
        if self.signalled is None:
            self.signalled = "SIGTERM"
            self.proc.terminate()
            self.kill_at = now + self.owner.term_s
        elif self.signalled == "SIGTERM":
            self.signalled = "SIGKILL"
            self.proc.kill()

    def _finished(self, outcome: AttemptOutcome, run_s: float) -> AttemptOutcome:
        self.proc.join(timeout=30)
        return AttemptOutcome(
            outcome.status,
            result=outcome.result,
            error=outcome.error,
            traceback=outcome.traceback,
            exit_code=self.proc.exitcode,
            startup_s=self.startup_s,
            run_s=run_s,
        )

    def _died(self) -> AttemptOutcome:
        self.proc.join(timeout=30)
        code = self.proc.exitcode
        if self.signalled is not None:
            waited = time.monotonic() - (self.cancelled_at or time.monotonic())
            return AttemptOutcome(
                "cancelled",
                error=(
                    f"the training process did not stop within {waited:.1f} s of the cancel "
                    f"request and was stopped with {self.signalled}"
                ),
                exit_code=code,
                startup_s=self.startup_s,
            )
        return AttemptOutcome(
            "failed", error=describe_exit(code), exit_code=code, startup_s=self.startup_s
        )

    def reap(self) -> None:
        """Make sure the child is gone (SIGTERM, then SIGKILL) once the parent is done."""
        self.proc.join(timeout=self.owner.term_s)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(timeout=self.owner.term_s)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


EXECUTORS = ("inline", "thread", "process", "ray")


def make_executor(kind: str | Executor, grace_s: float = 30.0) -> Executor:
    """Return an executor by name ("inline", "thread", "process", "ray") or pass one through.

    "ray" places jobs on the Ray cluster at ``$RAY_ADDRESS`` (or a local one); build a
    ``service.ray_executor.RayExecutor`` yourself to name another address.

    Raises:
        ValueError: an unknown name.
        MissingDependency: "ray" without Ray installed (the message says what to install).
    """
    if not isinstance(kind, str):
        return kind
    if kind == "ray":
        from smalltrain.service.execution.ray.support import load_ray_executor

        return load_ray_executor()(grace_s=grace_s)
    if kind == "inline":
        return InlineExecutor()
    if kind == "thread":
        return ThreadExecutor()
    if kind == "process":
        return ProcessExecutor(grace_s=grace_s)
    raise ValueError(f"unknown executor {kind!r}; choose one of {', '.join(EXECUTORS)}")
