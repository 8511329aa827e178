"""The warm start: job processes forked from a server that has torch and the tasks loaded.

A spawned child pays, before its first step, for a new interpreter, ``import torch``, the
``torch._dynamo`` import that the first optimizer triggers, and the task's own modules: 2-3 s
on an idle 2-core machine, 6-9 s under load (issue 26). The process executor therefore starts
its children through multiprocessing's *forkserver*: one server process per scheduler process,
started from a fresh interpreter (never forked from the scheduler, whose threads and state a
fork would copy), imports ``preload_modules()`` once, and forks one child per job.

What stays as it was with ``spawn``:

- **Isolation.** Each job still runs in a process of its own (a fork of the idle server), with
  the same pipes, cancel, grace, kill and pid file (``executors.ProcessExecutor``).
- **No CUDA before the fork.** The server only imports; it runs no torch operation and starts
  with ``PYTORCH_NVML_BASED_CUDA_CHECK=1``, so that a module asking
  ``torch.cuda.is_available()`` at import does not initialise the driver. The GPU memory cap
  is applied in the job's own process, as before (``attempt.apply_limits``).
  ``tests/service/test_warm_start.py`` checks that no preloaded import initialises CUDA.
- **The environment.** A forked child would inherit the *server's* environment; the job's
  (the scheduler's own at the job's start, plus its thread budget) is sent with the job and
  replaces it before anything else runs (``adopt_environment``), so that ``EXTRA_TASKS_ENV``,
  ``CUDA_VISIBLE_DEVICES`` and the like read as a spawned child would read them.
- **The thread budget.** ``OMP_WAIT_POLICY`` is read when OpenMP loads, in the server, so the
  server starts with the executor's policy (``threads.child_env``; an executor asking for
  another policy than the running server's spawns instead). Thread *counts* are set in the
  child: ``torch.set_num_threads`` (as before) and, for the pools loaded in the server already
  (numpy's OpenBLAS), ``threadpoolctl`` where it is installed.

Set ``SMALLTRAIN_WARM_START=0`` to spawn every child as before. Only Linux uses the warm start
(macOS's fork and Apple's frameworks do not mix well, Windows has no fork).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.context
import os
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from multiprocessing import forkserver

from smalltrain import tasks
from smalltrain.service.execution.threads import child_environment, environ_set

__all__ = [
    "PRELOAD",
    "SPARE_ENV",
    "SPARE_STATE",
    "WARM_START_ENV",
    "adopt_environment",
    "preload_modules",
    "spare_enabled",
    "warm_context",
    "warm_up_torch",
]

#: "0" turns the warm start off (every job's process is spawned).
WARM_START_ENV = "SMALLTRAIN_WARM_START"

#: "0" turns off the spare job process (``executors.ProcessExecutor``; on by default).
SPARE_ENV = "SMALLTRAIN_SPARE_PROCESS"

#: In a spare job process: "warmed" once ``warm_up_torch`` ran, "job" once a job arrived.
SPARE_STATE: dict[str, bool] = {}

#: What every job's process needs, whatever its task: torch, and ``torch._dynamo``, which
#: ``torch.optim.Optimizer.__init__`` imports on first use (about 1 s on its own).
PRELOAD: tuple[str, ...] = ("torch", "torch._dynamo", "smalltrain.service.execution.attempt")

#: Only in the server's environment: an import that asks whether CUDA is available asks NVML,
#: which leaves the CUDA driver uninitialised (a forked child could not use it otherwise).
_SERVER_ENV = {"PYTORCH_NVML_BASED_CUDA_CHECK": "1"}

_lock = threading.Lock()
_server_policy: dict[str, str | None] = {}  # "passive" -> the policy the server started with


def preload_modules(task_names: Iterable[str] | None = None) -> list[str]:
    """The modules the server imports: ``PRELOAD``, then each task's ``warm_modules`` (a class
    attribute; only modules that are safe to import before the job's environment is known)."""
    names = ["__main__", *PRELOAD]
    for name in task_names if task_names is not None else tasks.task_names():
        try:
            factory = tasks.task_factory(name)
        except Exception:  # a broken extra task fails in its own job, with its own message
            continue
        names += [m for m in getattr(factory, "warm_modules", ()) if m not in names]
    return names


def enabled() -> bool:
    """Whether job processes are forked from a warm server here."""
    if os.environ.get(WARM_START_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    return sys.platform.startswith("linux")


def spare_enabled() -> bool:
    """Whether a process executor keeps a warmed-up spare child (with the warm start only)."""
    return os.environ.get(SPARE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def warm_context(passive: bool) -> multiprocessing.context.ForkServerContext | None:
    """The forkserver context with its server running (started here the first time), or None
    when the warm start is off or the running server was started with another OpenMP wait
    policy than ``passive`` asks for (the caller then spawns)."""
    if not enabled():
        return None
    with _lock:
        policy = _policy(passive)
        if _server_policy and _server_policy.get("policy") != policy:
            return None
        ctx = multiprocessing.get_context("forkserver")
        assert isinstance(ctx, multiprocessing.context.ForkServerContext)
        if not _server_policy:
            ctx.set_forkserver_preload(preload_modules())
        with _server_environment(passive):
            forkserver.ensure_running()  # (again, if the server died since)
        _server_policy["policy"] = policy
        return ctx


def _policy(passive: bool) -> str | None:
    with child_environment(None, passive):
        return os.environ.get("OMP_WAIT_POLICY")


@contextlib.contextmanager
def _server_environment(passive: bool) -> Iterator[None]:
    """The environment the server starts with: the scheduler's, the executor's OpenMP wait
    policy, no thread counts (each job sets its own), and ``_SERVER_ENV``."""
    with child_environment(None, passive), environ_set(_SERVER_ENV):
        yield


def warm_up_torch() -> None:
    """Run, once and tiny, each kind of work a job's first steps run, so that a spare job
    process (``executors.ProcessExecutor``) pays torch's lazy initialisation before its job
    arrives: the first forward/backward of a convolution and a linear layer, the optimizer's
    multi-tensor step and gradient norm, the finiteness checks, an SVD (the PCA baseline),
    a ``torch.save``/``load``, and OpenMP's thread pool. A new process pays 1-2 s for these on
    a 2-core machine (issue 26), mostly in the first call of each.

    CPU tensors only: CUDA is never touched (the spare's job may want a GPU, which a process
    can only use if it did not initialise CUDA before it was told which). The global RNG is
    left as it was (``fork_rng``), so a job draws the same numbers as in a fresh process.
    """
    import io

    import torch
    from torch import nn

    with torch.random.fork_rng(devices=[]):
        model = nn.Sequential(
            nn.Conv1d(4, 8, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Upsample(scale_factor=2),
            nn.Conv1d(8, 4, 3, padding=1),
            nn.Flatten(),
            nn.Linear(4 * 32, 8),
        )
        image = nn.Conv2d(3, 4, 3, padding=1)  # the detector's first layer kind
        params = [*model.parameters(), *image.parameters()]
        optimizer = torch.optim.AdamW(params, lr=1e-3, foreach=True)
        # step() first asks whether an accelerator is available (for CUDA graph capture); off
        # NVML that asks the CUDA runtime, which this process may not touch yet. CPU tensors
        # need no such check (the spy in tests/service/test_warm_start.py sees any CUDA call).
        optimizer._accelerator_graph_capture_health_check = lambda: None  # type: ignore[method-assign]
        x = torch.linspace(-1.0, 1.0, 2 * 4 * 16).reshape(2, 4, 16)
        out = model(x)
        loss = torch.nn.functional.mse_loss(out, torch.zeros_like(out)) + out.abs().mean()
        loss = loss + image(torch.ones(1, 3, 8, 8)).pow(2).mean()
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
        grads = [p.grad for p in params if p.grad is not None]
        bool(torch.stack([torch.isfinite(g).all() for g in grads]).all())
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            torch.linalg.svd(torch.eye(8) + torch.linspace(0.0, 1.0, 64).reshape(8, 8))
            torch.isfinite(out).all()
        buffer = io.BytesIO()
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, buffer)
        buffer.seek(0)
        torch.load(buffer, weights_only=True)


def adopt_environment(environ: Mapping[str, str], threads: int | None) -> None:
    """In a forked child: take the job's environment, and size the thread pools that were
    loaded in the server before the job's thread budget was known."""
    os.environ.clear()
    os.environ.update(environ)
    if not threads:
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # torch's own pools are sized by apply_limits all the same
        return
    threadpool_limits(limits=int(threads), user_api="blas")
