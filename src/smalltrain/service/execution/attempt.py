"""One attempt of a job: what it needs (``AttemptSpec``), how it ended (``AttemptOutcome``), and
the code every executor shares: ``run_task`` (build the JobContext, call the task through
``engine.runner.call_train``) and the entry point of the process executor's spawned child
(``child_main``).

Everything here crosses a process boundary, so specs and outcomes hold plain picklable values
and outcomes convert to and from dicts.
"""

from __future__ import annotations

import contextlib
import multiprocessing.connection as mpc
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from smalltrain import errors, tasks
from smalltrain.engine.checkpoint_index import package_versions
from smalltrain.engine.context import (
    CancelToken,
    JobContext,
    ResourceLimits,
    TrainResult,
    cancel_mode,
)
from smalltrain.engine.events import Event
from smalltrain.engine.runner import call_train
from smalltrain.errors import DiskFull, GpuOutOfMemory
from smalltrain.service.execution.threads import lower_priority
from smalltrain.tasks import EXTRA_TASKS_ENV, register_extra_tasks

__all__ = [
    "EXTRA_TASKS_ENV",
    "AttemptOutcome",
    "AttemptSpec",
    "apply_limits",
    "child_main",
    "describe_exit",
    "error_line",
    "reason_of",
    "register_extra_tasks",
    "result_from_dict",
    "result_to_dict",
    "run_task",
    "spare_main",
    "traceback_summary",
]

#: "interrupted": the machine under the attempt went away (a Ray node or worker died); the job
#: may be retried from its newest checkpoint.
OutcomeStatus = Literal["completed", "cancelled", "failed", "interrupted"]
_TRACEBACK_LINES = 40
_ORPHANED = "the scheduler process went away"


@dataclass(frozen=True)
class AttemptSpec:
    """Everything needed to run one attempt of a job, in plain picklable values."""

    job_id: str
    task: str
    config: Mapping[str, Any]
    dataset_path: Path
    run_dir: Path
    resume_from: Path | None = None
    device: str = "cpu"
    limits: ResourceLimits = field(default_factory=ResourceLimits)
    cache_dir: Path | None = None
    placement: Mapping[str, Any] = field(default_factory=dict)  # see service.placement
    dataset_fingerprint: str = ""


@dataclass(frozen=True)
class AttemptOutcome:
    """How an attempt ended. ``error`` is one readable line; ``traceback`` a short summary."""

    status: OutcomeStatus
    result: TrainResult | None = None
    error: str | None = None
    traceback: str | None = None
    exit_code: int | None = None
    startup_s: float | None = None  # process executor: spawn until the child was ready
    run_s: float | None = None  # process executor: child ready until its final message

    def to_dict(self) -> dict[str, Any]:
        """A picklable/JSON-able form (the result's paths become strings)."""
        return {
            "status": self.status,
            "result": result_to_dict(self.result) if self.result is not None else None,
            "error": self.error,
            "traceback": self.traceback,
            "exit_code": self.exit_code,
            "startup_s": self.startup_s,
            "run_s": self.run_s,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AttemptOutcome:
        result = data.get("result")
        return cls(
            status=data["status"],
            result=result_from_dict(result) if result is not None else None,
            error=data.get("error"),
            traceback=data.get("traceback"),
            exit_code=data.get("exit_code"),
            startup_s=data.get("startup_s"),
            run_s=data.get("run_s"),
        )


_RESULT_PATHS = ("run_dir", "best_checkpoint", "last_checkpoint", "weights")


def result_to_dict(result: TrainResult) -> dict[str, Any]:
    """Turn a TrainResult into plain values (paths as strings)."""
    out = {f: getattr(result, f) for f in TrainResult.__dataclass_fields__}
    for key in _RESULT_PATHS:
        out[key] = str(out[key]) if out[key] is not None else None
    for key in ("metrics", "artifacts", "extra"):
        out[key] = dict(out[key])
    return out


def result_from_dict(data: Mapping[str, Any]) -> TrainResult:
    """Rebuild a TrainResult from ``result_to_dict`` output."""
    values = dict(data)
    for key in _RESULT_PATHS:
        values[key] = Path(values[key]) if values.get(key) is not None else None
    return TrainResult(**values)


def error_line(exc: BaseException) -> str:
    """``Type: message`` on one line; a full disk's message speaks for itself."""
    text = str(exc).strip()
    if isinstance(exc, DiskFull):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def reason_of(error: str | None) -> str | None:
    """What a job's status line says of its ``error`` (``error_line``'s text): the message of
    an error smalltrain raised on purpose, which is written for the user, without its class
    name (``WeightsNotFound: base_model ...`` reads ``base_model ...``); any other error keeps
    its type (``RuntimeError: boom``), which says what went wrong. The error itself keeps the
    class name: ``failed_on_config`` reads it."""
    if not error:
        return error
    name, sep, text = error.partition(": ")
    kind = getattr(errors, name, None) if sep and name.isidentifier() else None
    if isinstance(kind, type) and issubclass(kind, errors.SmallTrainError) and text.strip():
        return text
    return error


def traceback_summary(exc: BaseException) -> str:
    lines = "".join(traceback.format_exception(exc)).rstrip().splitlines()
    if len(lines) > _TRACEBACK_LINES:
        lines = ["...", *lines[-_TRACEBACK_LINES:]]
    return "\n".join(lines)


def run_task(
    spec: AttemptSpec, emit: Callable[[Event], None], cancel: CancelToken
) -> AttemptOutcome:
    """Run one attempt in this thread and report how it ended: the function every executor
    ends in (inline and thread here, process in its child, Ray on a node).

    It resolves the task by name, builds the ``JobContext`` (limits and cache folder
    included) and calls ``engine.runner.call_train``, which logs every event to
    ``run_dir/events.jsonl`` and turns a full disk or a GPU out of memory into our own error.
    Every exception from the task (or from building its config) becomes a failed outcome.
    """
    try:
        task = tasks.get_task(spec.task)
        ctx = JobContext(
            job_id=spec.job_id,
            config=task.config_from_dict(spec.config),
            dataset_path=Path(spec.dataset_path),
            run_dir=Path(spec.run_dir),
            cancel=cancel,
            emit=emit,
            resume_from=Path(spec.resume_from) if spec.resume_from else None,
            device=spec.device,
            limits=spec.limits,
            cache_dir=Path(spec.cache_dir) if spec.cache_dir else None,
        )
        result = call_train(task, ctx)
    except (DiskFull, GpuOutOfMemory) as exc:
        # The machine's state, not a bug: one clear line that says what to do, no traceback.
        return AttemptOutcome("failed", error=error_line(exc))
    except Exception as exc:
        return AttemptOutcome("failed", error=error_line(exc), traceback=traceback_summary(exc))
    status: OutcomeStatus = "cancelled" if result.status == "cancelled" else "completed"
    return AttemptOutcome(status, result=result)


# --- the spawned child ---------------------------------------------------------------------


def describe_exit(exit_code: int | None) -> str:
    """Say in words how a child process ended, e.g. "was killed by signal 9 (SIGKILL)"."""
    if exit_code is None:
        return "the training process ended in an unknown way"
    if exit_code < 0:
        number = -exit_code
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = "unknown signal"
        text = f"the training process was killed by signal {number} ({name})"
        if number == signal.SIGKILL:
            text += " — possibly out of memory (the kernel's OOM killer sends SIGKILL)"
        return text
    return f"the training process exited with code {exit_code} without reporting a result"


def apply_limits(limits: ResourceLimits, device: str) -> None:
    """Apply a job's resource limits to this process (a job's child, or its Ray worker)."""
    if limits.cpu_threads:
        import torch

        torch.set_num_threads(limits.cpu_threads)
    if limits.max_gpu_memory_percent and device.startswith("cuda"):
        from smalltrain.engine.resources import apply_gpu_memory_cap

        apply_gpu_memory_cap(limits.max_gpu_memory_percent, device)


def _watch_control(control: mpc.Connection, token: CancelToken, orphan_grace_s: float) -> None:
    """Child side: turn cancel messages into ``token.cancel``; stop if the parent vanishes."""
    while True:
        try:
            msg = control.recv()
        except (EOFError, OSError):
            # The parent (the scheduler) died: checkpoint and stop, so a restarted scheduler can
            # resume this job without two processes writing one run folder.
            token.cancel(_ORPHANED, "immediate")
            time.sleep(orphan_grace_s)
            os._exit(75)
        if isinstance(msg, dict) and msg.get("op") == "cancel":
            mode = cancel_mode(str(msg.get("mode", "graceful")))
            token.cancel(str(msg.get("reason", "cancelled")), mode)


def spare_main(
    events: mpc.Connection, control: mpc.Connection, orphan_grace_s: float, nice: int = 0
) -> None:
    """Entry point of a spare job process (``executors.ProcessExecutor``): warm up, then wait
    for a job on ``control`` and run it as ``child_main`` would.

    The warm-up (``warm.warm_up_torch``) runs before the job is known, on the CPU only; the
    job's message brings its spec and environment, and from then on the process is a job's
    child like any other (its limits are applied after the message, CUDA first touched by
    the job). A closed pipe (the executor shut down, or its process died) ends it quietly.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    lower_priority(nice)  # the warm-up too yields to the faces and to running jobs
    from smalltrain.service.execution import warm

    with contextlib.suppress(Exception):  # a warm-up that fails costs its job a cold start
        warm.warm_up_torch()
        package_versions()  # what every checkpoint records: read once per process
    warm.SPARE_STATE["warmed"] = True
    try:
        msg = control.recv()
    except (EOFError, OSError):
        os._exit(0)
    if not (isinstance(msg, dict) and msg.get("op") == "job"):
        os._exit(0)
    warm.SPARE_STATE["job"] = True
    child_main(msg["spec"], events, control, orphan_grace_s, msg["environ"])


def child_main(
    spec: AttemptSpec,
    events: mpc.Connection,
    control: mpc.Connection,
    orphan_grace_s: float,
    environ: Mapping[str, str] | None = None,
    nice: int = 0,
) -> None:
    """Entry point of the job's child: limits, context, train, final message.

    ``environ``: the job's environment, for a child forked from the warm start's server
    (which has its own); a spawned child has it already. ``nice``: how much to lower this
    process's CPU priority (``threads.job_nice``; 0 leaves it).
    """
    lower_priority(nice)
    if environ is not None:
        from smalltrain.service.execution.warm import adopt_environment

        adopt_environment(environ, spec.limits.cpu_threads)
    # Ctrl-C in a terminal reaches the whole process group; the parent owns the two-stage stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    register_extra_tasks()
    send_lock = threading.Lock()

    def send(kind: str, payload: Any) -> None:
        # A dead parent must not make the task fail mid-step: drop what cannot be delivered.
        with send_lock, contextlib.suppress(OSError):
            events.send((kind, payload))

    token = CancelToken()
    threading.Thread(
        target=_watch_control, args=(control, token, orphan_grace_s), daemon=True
    ).start()
    try:
        apply_limits(spec.limits, spec.device)
    except Exception as exc:
        outcome = AttemptOutcome("failed", error=error_line(exc), traceback=traceback_summary(exc))
    else:
        # Import the task (torch with it) before "ready": the one-off start-up cost is then
        # measured apart from training. An unknown task fails in run_task with a clear message.
        with contextlib.suppress(Exception):
            tasks.get_task(spec.task)
        if token.is_set() and token.reason == _ORPHANED:
            # The parent died while this process was starting: it may not have recorded this
            # process anywhere, so a resumed attempt could already be running. Nothing was
            # trained yet, so there is nothing to save: leave without touching the run folder.
            os._exit(75)
        send("ready", {"pid": os.getpid()})
        outcome = run_task(spec, lambda event: send("event", event.to_dict()), token)
    send("outcome", outcome.to_dict())
    events.close()
