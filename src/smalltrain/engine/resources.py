"""Machine resources: ``ResourceMonitor`` (the original API) and the child's GPU memory cap.

Units, once and for all:
- **Thresholds are fractions**: ``gpu_threshold=0.9`` means 90 %.
- **Reported values are percents, 0–100**: ``ram_percent=42.0`` means 42 %.

``check()`` samples CPU and RAM (psutil), the resident memory of a process and all its
children (``pid``, e.g. a job's child process), and each GPU: memory used/total and
utilisation through NVML (nvidia-ml-py), else ``torch.cuda``; Apple MPS memory where present.
A status is ``constrained`` when RAM use is above ``ram_threshold`` or the fullest GPU's memory
use is above ``gpu_threshold``; ``reasons`` says which, in words. Without a GPU,
``gpu_percent`` is None, ``gpu_available`` is False and ``note`` says "no GPU detected": GPU
numbers are never faked as zeros.

Callbacks (``add_callback``) are called with the status whenever a check finds the machine
constrained. ``start(interval)`` runs checks on a daemon thread; ``stop()`` returns promptly.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil

from smalltrain.errors import GpuOutOfMemory

__all__ = [
    "GpuStatus",
    "ResourceMonitor",
    "ResourceStatus",
    "apply_gpu_memory_cap",
    "gpu_oom_error",
    "gpu_snapshot",
    "process_tree_rss",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GpuStatus:
    """One accelerator. Percents are 0–100; ``utilization_percent`` is None where unknown."""

    index: int
    name: str
    backend: str  # "nvml", "torch.cuda" or "mps"
    memory_used_bytes: int
    memory_total_bytes: int
    memory_percent: float
    utilization_percent: float | None = None


@dataclass(frozen=True)
class ResourceStatus:
    """One sample of the machine. Percents are 0–100; see the module docstring."""

    gpu_percent: float | None  # memory use of the fullest GPU; None without a GPU
    ram_percent: float
    constrained: bool
    cpu_percent: float = 0.0
    process_rss_bytes: int | None = None  # the watched process tree; None if no pid
    gpus: list[GpuStatus] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    gpu_available: bool = False
    note: str = ""
    time: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return asdict(self)


def process_tree_rss(pid: int) -> int | None:
    """Resident memory of process ``pid`` and all its descendants, in bytes (None if gone)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


class _Nvml:
    """NVML, initialised once per process; ``ok`` is False where there is no NVIDIA driver."""

    _lock = threading.Lock()
    _state: bool | None = None

    @classmethod
    def ok(cls) -> bool:
        with cls._lock:
            if cls._state is None:
                try:
                    import pynvml

                    pynvml.nvmlInit()
                    cls._state = True
                except Exception:  # no library, no driver, no device
                    cls._state = False
            return cls._state


def _nvml_gpus() -> list[GpuStatus]:
    import pynvml

    gpus = []
    for i in range(pynvml.nvmlDeviceGetCount()):
        h = pynvml.nvmlDeviceGetHandleByIndex(i)
        mem = pynvml.nvmlDeviceGetMemoryInfo(h)
        name = pynvml.nvmlDeviceGetName(h)
        util: float | None = None
        with contextlib.suppress(pynvml.NVMLError):
            util = float(pynvml.nvmlDeviceGetUtilizationRates(h).gpu)
        total = int(mem.total)
        gpus.append(
            GpuStatus(
                index=i,
                name=name.decode() if isinstance(name, bytes) else str(name),
                backend="nvml",
                memory_used_bytes=int(mem.used),
                memory_total_bytes=total,
                memory_percent=100.0 * int(mem.used) / total if total else 0.0,
                utilization_percent=util,
            )
        )
    return gpus


def _torch_gpus() -> list[GpuStatus]:
    try:
        import torch
    except ImportError:
        return []
    gpus = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            used = total - free
            gpus.append(
                GpuStatus(i, torch.cuda.get_device_name(i), "torch.cuda", used, total,
                          100.0 * used / total if total else 0.0)
            )  # fmt: skip
    elif sys.platform == "darwin" and torch.backends.mps.is_available():
        used = int(torch.mps.driver_allocated_memory())
        recommended = getattr(torch.mps, "recommended_max_memory", None)
        total = int(recommended()) if recommended else int(psutil.virtual_memory().total)
        gpus.append(GpuStatus(0, "Apple MPS", "mps", used, total, 100.0 * used / total))
    return gpus


def gpu_snapshot() -> list[GpuStatus]:
    """Every GPU this process can see (NVML first, then torch); [] when there is none."""
    if _Nvml.ok():
        try:
            return _nvml_gpus()
        except Exception as e:  # a driver hiccup must not stop the monitor
            log.warning("NVML query failed (%s); trying torch", e)
    try:
        return _torch_gpus()
    except Exception as e:
        log.warning("torch GPU query failed: %s", e)
        return []


class ResourceMonitor:
    """Samples the machine and alerts callbacks when it is constrained.

    Args:
        gpu_threshold: fraction (0–1) of GPU memory above which the machine is constrained.
        ram_threshold: fraction (0–1) of system RAM above which the machine is constrained.
        pid: a process whose whole tree's RSS each status reports (settable later).
    """

    def __init__(
        self, gpu_threshold: float = 0.9, ram_threshold: float = 0.85, pid: int | None = None
    ) -> None:
        for label, value in (("gpu_threshold", gpu_threshold), ("ram_threshold", ram_threshold)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{label}={value!r}: must be a fraction between 0 and 1")
        self.gpu_threshold = gpu_threshold
        self.ram_threshold = ram_threshold
        self.pid = pid
        self.callbacks: list[Callable[[ResourceStatus], None]] = []
        self._latest: ResourceStatus | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        psutil.cpu_percent(interval=None)  # primes the counter; the next call measures from here

    @property
    def latest(self) -> ResourceStatus | None:
        """The newest status (from ``check`` or the sampler), or None before the first."""
        return self._latest

    def add_callback(self, fn: Callable[[ResourceStatus], None]) -> Callable[[], None]:
        """Call ``fn(status)`` whenever a check is constrained; returns a remover."""
        self.callbacks.append(fn)

        def remove() -> None:
            if fn in self.callbacks:
                self.callbacks.remove(fn)

        return remove

    def check(self) -> ResourceStatus:
        """Take one sample; notify callbacks if constrained; return it."""
        ram = float(psutil.virtual_memory().percent)
        gpus = gpu_snapshot()
        gpu_percent = max((g.memory_percent for g in gpus), default=None)
        reasons = []
        if ram > self.ram_threshold * 100:
            reasons.append(f"RAM {ram:.0f}% used > {self.ram_threshold * 100:.0f}% threshold")
        for g in gpus:
            if g.memory_percent > self.gpu_threshold * 100:
                reasons.append(
                    f"GPU {g.index} memory {g.memory_percent:.0f}% used > "
                    f"{self.gpu_threshold * 100:.0f}% threshold"
                )
        status = ResourceStatus(
            gpu_percent=gpu_percent,
            ram_percent=ram,
            constrained=bool(reasons),
            cpu_percent=float(psutil.cpu_percent(interval=None)),
            process_rss_bytes=None if self.pid is None else process_tree_rss(self.pid),
            gpus=gpus,
            reasons=reasons,
            gpu_available=bool(gpus),
            note=", ".join(f"{g.name} ({g.backend})" for g in gpus) or "no GPU detected",
        )
        self._latest = status
        if status.constrained:
            self._notify(status)
        return status

    def notify_callbacks(self, status: ResourceStatus) -> None:
        """Call every callback with ``status`` (the original name)."""
        self._notify(status)

    def _notify(self, status: ResourceStatus) -> None:
        for fn in list(self.callbacks):
            try:
                fn(status)
            except Exception:  # one bad callback must not silence the others
                log.exception("resource callback %r failed", fn)

    def start(self, interval: float = 1.0) -> None:
        """Sample every ``interval`` seconds on a daemon thread (no-op if already running)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(interval,), name="smalltrain-resources", daemon=True
        )
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.is_set():
            try:
                self.check()
            except Exception:
                log.exception("resource check failed")
            self._stop.wait(interval)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the sampler and wait (at most ``timeout`` s) for its thread to end."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


def apply_gpu_memory_cap(fraction: float, device: str = "cuda") -> tuple[bool, str]:
    """Cap this process's CUDA memory at ``fraction`` (0–1) of ``device``'s total.

    Called by a job's child process before training. Returns ``(applied, reason)``; without
    CUDA (or for a non-CUDA device) nothing happens and ``applied`` is False.

    Raises:
        ValueError: ``fraction`` is not in (0, 1].
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"max_gpu_memory_percent={fraction!r}: must be a fraction in (0, 1]")
    if not device.startswith("cuda"):
        return False, f"device {device!r} is not CUDA; no GPU memory cap applied"
    import torch

    if not torch.cuda.is_available():
        return False, "CUDA is not available; no GPU memory cap applied"
    index = int(device.split(":", 1)[1]) if ":" in device else torch.cuda.current_device()
    torch.cuda.set_per_process_memory_fraction(fraction, index)
    return True, f"GPU memory capped at {fraction:.0%} of cuda:{index}"


_TRIED = re.compile(r"Tried to allocate ([0-9.]+ [KMGT]?i?B)")


def gpu_oom_error(
    exc: BaseException, cap: float | None, device: str, total_bytes: int | None = None
) -> GpuOutOfMemory | None:
    """Our error for a CUDA out-of-memory exception (None for any other exception).

    torch raises ``torch.OutOfMemoryError`` (a ``RuntimeError``) with a page of allocator
    details; a user needs to know that the job hit its memory cap (or the card's size), by how
    much it asked, and what to change. Ultralytics has already retried with smaller batches in
    its first epoch by the time this reaches us.
    """
    text = str(exc)
    name = type(exc).__name__
    if not (
        name == "OutOfMemoryError"
        or (isinstance(exc, RuntimeError) and "CUDA out of memory" in text)
    ):
        return None
    tried = _TRIED.search(text)
    asked = f"; it asked for {tried.group(1)} more" if tried else ""
    if total_bytes is None:
        total_bytes = _device_total(device)
    total = f" of {total_bytes / 2**30:.1f} GiB" if total_bytes else ""
    if cap:
        limit = f"its cap max_gpu_memory_percent={cap:g}"
        limit += f" ({cap * total_bytes / 2**30:.1f} GiB{total})" if total_bytes else ""
        fix = (
            "Lower batch_size (or image_size), or raise max_gpu_memory_percent "
            "(--set max_gpu_memory_percent=0.9)"
        )
    else:
        limit = f"the memory of {device}{total}"
        fix = "Lower batch_size (or image_size), or free the GPU from other processes"
    return GpuOutOfMemory(f"the job ran out of GPU memory on {device} under {limit}{asked}. {fix}")


def _device_total(device: str) -> int | None:
    """The device's total memory in bytes, when torch is already loaded and sees CUDA."""
    torch = sys.modules.get("torch")
    if torch is None or not device.startswith("cuda"):
        return None
    try:
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        return int(torch.cuda.get_device_properties(index).total_memory)
    except Exception:  # no CUDA after all, or a bad index: the message goes without it
        return None
