"""A thread budget for jobs that share one machine.

torch starts one intra-op thread per core in every process. Two jobs at once on a 2-core
machine then run four busy threads, and OpenMP's worker threads spin while they wait for work,
so each epoch ran 3-4x slower instead of 2x (issue 15: two tiny audio jobs took 81 s at once
against 50 s one after the other). Each job's process therefore gets

- ``cores // jobs that may run at once`` threads (``thread_budget``), unless the job asks for a
  number itself (``num_cpus``), through ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` in its
  environment and ``torch.set_num_threads`` once it runs;
- ``OMP_WAIT_POLICY=PASSIVE`` (unless the user set a policy), so that waiting OpenMP threads
  sleep instead of spinning. libgomp reads it when torch loads, so it has to be in the
  process's environment from the start: ``child_environment`` sets it around the spawn.

``bench/bench_concurrency.py`` measures both.

Job processes also run at a lower CPU priority (``job_nice``: ``nice`` 10 unless
``SMALLTRAIN_JOB_NICE`` says otherwise; 0 turns it off), so that on a machine whose cores a
job keeps busy, the UI's server and the CLI, which wait on the user, still get a core when they
need one (issue 26). A job on an otherwise idle machine runs as fast: the priority only
matters to the scheduler of the operating system when something else wants the core.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

__all__ = [
    "JOB_NICE_ENV",
    "THREAD_ENV",
    "child_env",
    "child_environment",
    "cpu_count",
    "environ_set",
    "job_nice",
    "lower_priority",
    "thread_budget",
]

#: Environment variables that size the thread pools of OpenMP, MKL and OpenBLAS.
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_ENV_LOCK = threading.Lock()

#: How much lower a job process's CPU priority is than its scheduler's (``nice``); 0: the same.
JOB_NICE_ENV = "SMALLTRAIN_JOB_NICE"
DEFAULT_JOB_NICE = 10


def job_nice() -> int:
    """The ``nice`` increment for job processes: ``$SMALLTRAIN_JOB_NICE`` (0-19), else 10.

    Raises:
        ValueError: a value that is not a whole number from 0 to 19 (the message names it).
    """
    text = os.environ.get(JOB_NICE_ENV, "").strip()
    if not text:
        return DEFAULT_JOB_NICE
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 19:
        raise ValueError(
            f"{JOB_NICE_ENV}={text!r}: give a whole number from 0 (job processes run at the "
            f"scheduler's CPU priority) to 19 (the lowest); the default is {DEFAULT_JOB_NICE}"
        )
    return value


def lower_priority(nice: int) -> None:
    """Lower this process's CPU priority by ``nice`` (nothing for 0, or where the OS has no
    ``nice``)."""
    if nice > 0 and hasattr(os, "nice"):
        with contextlib.suppress(OSError):
            os.nice(nice)


def cpu_count() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def thread_budget(jobs_at_once: int, cores: int | None = None) -> int:
    """Threads for one job when ``jobs_at_once`` jobs share ``cores`` (at least 1)."""
    cores = cpu_count() if cores is None else cores
    return max(1, cores // max(1, jobs_at_once))


def child_env(threads: int | None, passive: bool = True) -> dict[str, str]:
    """The environment variables a job's process should start with."""
    env = {name: str(int(threads)) for name in THREAD_ENV} if threads else {}
    if passive and "OMP_WAIT_POLICY" not in os.environ:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    return env


@contextlib.contextmanager
def child_environment(threads: int | None, passive: bool = True) -> Iterator[None]:
    """Set ``child_env(threads, passive)`` in ``os.environ`` while a child process is started,
    then restore it.

    ``multiprocessing`` has no per-process environment; a spawned child copies the parent's
    at start. A lock keeps two jobs that start at once from mixing their values (the values
    are chosen under it too, so one job's temporary setting never looks like the user's).
    """
    with _ENV_LOCK, environ_set(child_env(threads, passive)):
        yield


@contextlib.contextmanager
def environ_set(values: dict[str, str]) -> Iterator[None]:
    """Set ``values`` in ``os.environ`` for the block, then put back what was there (or
    nothing)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
