"""Which device a job trains on: one rule for every task.

torch is imported only when a device is resolved, so importing this module stays light; and
not even then for "cpu", nor for "auto" on a Linux machine with no GPU driver at all (planning
a job in ``smalltrain train`` then never loads torch: about 1.5 s on a 2-core machine).
"""

from __future__ import annotations

import os
import re
import sys

from smalltrain.engine.config import check

__all__ = ["DEVICE_PATTERN", "no_gpu_here", "resolve_device"]

#: The device strings a config may hold.
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


#: What a GPU that torch could use leaves on a Linux machine: the NVIDIA driver, ROCm's device,
#: WSL's GPU device.
_GPU_SIGNS = ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/kfd", "/dev/dxg")


def no_gpu_here() -> bool:
    """True when this machine certainly has no GPU for torch, told without importing torch:
    Linux with none of ``_GPU_SIGNS``. Elsewhere (macOS has MPS) always False."""
    return sys.platform.startswith("linux") and not any(map(os.path.exists, _GPU_SIGNS))


def resolve_device(requested: str | None = "auto") -> str:
    """Pick the device: "auto" (or nothing) gives cuda > mps > cpu; an explicit one is checked.

    Raises:
        ConfigError: the requested device is unknown or not available here.
    """
    req = (requested or "auto").strip().lower()
    check(
        "device",
        requested,
        bool(DEVICE_PATTERN.match(req)),
        "must be auto, cpu, cuda, cuda:N or mps",
    )
    if req == "cpu" or (req == "auto" and no_gpu_here()):
        return "cpu"
    import torch

    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps is not None and mps.is_available())
    if req == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if req.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(req.partition(":")[2] or 0)
        check("device", requested, count > 0,
              "no CUDA GPU is available here; use device=auto or device=cpu")  # fmt: skip
        check("device", requested, index < count, f"only {count} CUDA device(s) are available")
    if req == "mps":
        check("device", requested, has_mps,
              "Apple MPS is not available here; use device=auto or device=cpu")  # fmt: skip
    return req
