"""Which device a job trains on: one rule for every task.

torch is imported only when a device is resolved, so importing this module stays light.
"""

from __future__ import annotations

import re

from smalltrain.engine.config import check

__all__ = ["DEVICE_PATTERN", "resolve_device"]

#: The device strings a config may hold.
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def resolve_device(requested: str | None = "auto") -> str:
    """Pick the device: "auto" (or nothing) gives cuda > mps > cpu; an explicit one is checked.

    Raises:
        ConfigError: the requested device is unknown or not available here.
    """
    import torch

    req = (requested or "auto").strip().lower()
    check(
        "device",
        requested,
        bool(DEVICE_PATTERN.match(req)),
        "must be auto, cpu, cuda, cuda:N or mps",
    )
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
