"""``ChildPool``: runs the UI's heavy work (inspection, planning, generation, prediction,
evaluation) in spawned child processes, so the server process stays responsive.

A busy thread in a web server's process competes with it for the GIL (a Gradio server's HTTP
p95 went from about 16 ms to 145 ms); a busy child process barely moves it. Children are
started on demand (up to ``max_workers``), stay warm while used (torch imported once), and are
shut down after ``idle_s`` seconds without work to give their memory back.

Errors cross the process boundary as (class name, message, attributes) and are raised again
here as the same smalltrain error class, so callers (and the API's status codes) see the same
errors as in-process code.
"""

from __future__ import annotations

import builtins
import concurrent.futures as cf
import faulthandler
import logging
import multiprocessing
import signal
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from smalltrain import errors

__all__ = ["ChildPool", "rebuild_error"]

log = logging.getLogger(__name__)


def _call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Child side: run ``fn``; an exception comes back as ``("__error__", ...)``."""
    try:
        return fn(*args, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the parent intact
        plain = (str, int, float, type(None))  # anything else is quoted (a ConfigError's [])
        attrs = {k: v if isinstance(v, plain) else errors.quoted(v) for k, v in vars(exc).items()}
        return ("__error__", type(exc).__name__, str(exc), attrs, traceback.format_exc())


def rebuild_error(name: str, message: str, attrs: dict[str, Any]) -> Exception:
    """An exception of class ``name`` (from ``smalltrain.errors`` or the builtins) with
    ``message``; unknown classes become ``RuntimeError``. Attributes such as a
    ``ConfigError``'s ``field`` are restored."""
    cls = getattr(errors, name, None) or getattr(builtins, name, None)
    if not (isinstance(cls, type) and issubclass(cls, Exception)):
        return RuntimeError(f"{name}: {message}")
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    exc.__dict__.update(attrs)
    return exc


def _child_start() -> None:
    """Child side, once: learn ``$SMALLTRAIN_EXTRA_TASKS`` as job children do, and import what
    the quick calls need (inspection, planning), so that a page's first Start or check does not
    wait for a fresh child's imports (about 0.7 s)."""
    from smalltrain.tasks import register_extra_tasks

    if hasattr(signal, "SIGUSR1"):  # the server forwards its SIGUSR1: every stack, to stderr
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    register_extra_tasks()
    import smalltrain.service.planning  # noqa: F401
    import smalltrain.ui.child.calls  # noqa: F401


def _ready() -> None:
    """Child side: nothing; submitted once per worker so that every child starts at once."""


class ChildPool:
    """Spawned worker processes that run functions of ``smalltrain.ui.child.calls``.

    Args:
        max_workers: children at most (one runs a long evaluation while another answers a
            quick validation).
        idle_s: shut the children down after this many seconds without work.
    """

    def __init__(self, max_workers: int = 2, idle_s: float = 600.0) -> None:
        self.max_workers = max_workers
        self.idle_s = idle_s
        self._executor: cf.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._busy = 0
        self._last_used = time.monotonic()
        self._closed = False
        self._reaper = threading.Thread(target=self._reap_idle, name="ui-pool-idle", daemon=True)
        self._reaper.start()

    def _get(self) -> cf.ProcessPoolExecutor:
        if self._closed:
            raise RuntimeError("the server is shutting down")
        if self._executor is None:
            self._executor = cf.ProcessPoolExecutor(
                self.max_workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_child_start,
            )
            # every child now, not one per busy moment: a Start that lands while the other
            # child answers a form check would otherwise wait for a fresh child's start
            for _ in range(self.max_workers):
                self._executor.submit(_ready)
        return self._executor

    def call(
        self, fn: Callable[..., Any], *args: Any, timeout: float | None = None, **kwargs: Any
    ) -> Any:
        """Run ``fn(*args, **kwargs)`` in a child and return its result (blocks the caller's
        thread, never the server's event loop when called from a worker thread).

        Raises:
            The child's exception, rebuilt (see ``rebuild_error``); ``TimeoutError``.
        """
        with self._lock:
            future = self._get().submit(_call, fn, args, kwargs)
            self._busy += 1
        try:
            result = future.result(timeout)
        except cf.process.BrokenProcessPool:
            with self._lock:  # a child died (killed, out of memory): start afresh next time
                self._executor = None
            raise RuntimeError(
                f"the helper process running {fn.__name__} stopped unexpectedly (out of "
                "memory?); try again"
            ) from None
        finally:
            with self._lock:
                self._busy -= 1
                self._last_used = time.monotonic()
        if isinstance(result, tuple) and len(result) == 5 and result[0] == "__error__":
            _, name, message, attrs, trace = result
            log.debug("child %s failed:\n%s", fn.__name__, trace)
            raise rebuild_error(name, message, attrs)
        return result

    def pids(self) -> list[int]:
        """The children's process ids (none while the pool is idle)."""
        with self._lock:
            executor = self._executor
        return [p.pid for p in list(getattr(executor, "_processes", {}).values()) if p.pid]

    @property
    def alive(self) -> bool:
        """Whether child processes are running now."""
        return self._executor is not None

    def _reap_idle(self) -> None:
        while not self._closed:
            time.sleep(min(5.0, self.idle_s / 4))
            with self._lock:
                idle = time.monotonic() - self._last_used
                executor = self._executor
                if executor is None or self._busy or idle < self.idle_s:
                    continue
                self._executor = None
            executor.shutdown(wait=False)

    def close(self) -> None:
        """Stop the children now (work in progress is abandoned)."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is None:
            return
        for proc in list(getattr(executor, "_processes", {}).values()):
            proc.terminate()  # a long generation must not hold the shutdown
        executor.shutdown(wait=True, cancel_futures=True)
