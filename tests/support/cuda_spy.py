"""Imported first by the warm start's server in ``test_warm_start``: it records every call that
would initialise CUDA (torch's lazy init, and the runtime's device count, which initialises the
driver), so that a CPU-only machine can tell whether a preloaded import asked for CUDA."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

CALLS: list[str] = []


def _spy(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        CALLS.append(name)
        return fn(*args, **kwargs)

    return wrapper


torch.cuda._lazy_init = _spy("torch.cuda._lazy_init", torch.cuda._lazy_init)
for _name in ("_cuda_init", "_cuda_getDeviceCount"):
    if hasattr(torch._C, _name):
        setattr(torch._C, _name, _spy(f"torch._C.{_name}", getattr(torch._C, _name)))
