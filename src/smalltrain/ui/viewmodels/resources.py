"""CPU, RAM and GPU gauges for the job view, sampled on a background thread.

CPU and RAM come from psutil. GPUs come from NVML when the driver offers it; without NVML the
engine's fallback would import torch, which the server process never does, so a child process
(``calls.gpus``) is asked once, and again every ``child_every_s`` while jobs run, only when it
found a GPU (ROCm, Apple MPS).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

import psutil

__all__ = ["ResourceSampler"]

log = logging.getLogger(__name__)


def _nvml_ok() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
        return True
    except Exception:  # no library, no driver, no device
        return False


class ResourceSampler:
    """Keeps the latest machine status (``latest``) fresh while the UI is open.

    Args:
        ask_child: returns the GPUs as a child process sees them (``calls.gpus`` in the pool).
        job_pid: returns the pid of the running job's process, or None.
        interval_s: seconds between samples.
    """

    def __init__(
        self,
        ask_child: Callable[[], list[dict[str, Any]]],
        job_pid: Callable[[], int | None],
        interval_s: float = 2.0,
        child_every_s: float = 10.0,
    ) -> None:
        self.ask_child = ask_child
        self.job_pid = job_pid
        self.interval_s = interval_s
        self.child_every_s = child_every_s
        self._latest: dict[str, Any] | None = None
        self._gpus: list[dict[str, Any]] = []
        self._gpu_source: str | None = None  # "nvml", "child", "none"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        psutil.cpu_percent(interval=None)

    def latest(self) -> dict[str, Any] | None:
        """The newest sample (starting the sampler on first use), or None before the first."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ui-resources", daemon=True)
                self._thread.start()
        return self._latest

    def _gpu_list(self, ticks: int) -> list[dict[str, Any]]:
        if self._gpu_source is None:
            self._gpu_source = "nvml" if _nvml_ok() else "child"
        if self._gpu_source == "nvml":
            from dataclasses import asdict

            from smalltrain.engine.resources import gpu_snapshot

            return [asdict(g) for g in gpu_snapshot()]
        refresh_every = max(1, round(self.child_every_s / self.interval_s))
        first = ticks == 0
        if first or (self._gpus and self.job_pid() is not None and ticks % refresh_every == 0):
            try:
                self._gpus = self.ask_child()
            except Exception as e:  # a failed probe shows "n/a", never breaks the page
                log.warning("GPU probe failed: %s", e)
                self._gpus = []
        return self._gpus

    def sample(self, ticks: int = 0) -> dict[str, Any]:
        """One sample: cpu_percent, ram_percent, ram_detail, gpus, job_rss_bytes."""
        from smalltrain.engine.resources import process_tree_rss

        mem = psutil.virtual_memory()
        status: dict[str, Any] = {
            "cpu_percent": float(psutil.cpu_percent(interval=None)),
            "ram_percent": float(mem.percent),
            "ram_detail": f"{mem.used / 2**30:.1f}/{mem.total / 2**30:.1f} GiB",
            "gpus": self._gpu_list(ticks),
        }
        pid = self.job_pid()
        if pid is not None:
            status["job_rss_bytes"] = process_tree_rss(pid)
        return status

    def _run(self) -> None:
        ticks = 0
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                self._latest = self.sample(ticks)
            ticks += 1
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
