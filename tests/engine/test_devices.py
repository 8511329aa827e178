"""Device choice and the GPU memory cap, shared by every task.

This machine has no GPU, so the CUDA answers come from a fake ``torch.cuda`` (monkeypatched
availability and device count); the real CUDA path is covered by the ``gpu``-marked tests.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from smalltrain.engine import devices
from smalltrain.engine.devices import resolve_device
from smalltrain.engine.resources import apply_gpu_memory_cap
from smalltrain.errors import ConfigError


def _fake_machine(monkeypatch: pytest.MonkeyPatch, *, gpus: int, mps: bool) -> None:
    monkeypatch.setattr(devices, "no_gpu_here", lambda: False)  # ask (the fake) torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


@pytest.mark.parametrize(
    ("gpus", "mps", "expected"), [(2, True, "cuda"), (0, True, "mps"), (0, False, "cpu")]
)
def test_auto_prefers_cuda_then_mps_then_cpu(
    monkeypatch: pytest.MonkeyPatch, gpus: int, mps: bool, expected: str
) -> None:
    _fake_machine(monkeypatch, gpus=gpus, mps=mps)
    assert resolve_device("auto") == expected
    assert resolve_device("") == expected  # a task's "" means "the job's device", i.e. auto
    assert resolve_device(None) == expected


def test_explicit_devices_are_checked_against_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_machine(monkeypatch, gpus=2, mps=False)
    assert resolve_device("cuda:1") == "cuda:1"
    assert resolve_device(" CPU ") == "cpu"
    with pytest.raises(ConfigError, match="only 2 CUDA device"):
        resolve_device("cuda:2")
    with pytest.raises(ConfigError, match="MPS is not available"):
        resolve_device("mps")
    _fake_machine(monkeypatch, gpus=0, mps=False)
    with pytest.raises(ConfigError, match="no CUDA GPU is available here"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="device"):
        resolve_device("tpu")


def test_cpu_and_auto_without_a_gpu_driver_do_not_load_torch() -> None:
    """Planning a job resolves its device; on a machine with no GPU driver that needs no torch
    (``smalltrain train`` plans before its job's process starts)."""
    code = (
        "import sys; from smalltrain.engine.devices import no_gpu_here, resolve_device; "
        "assert resolve_device('cpu') == 'cpu'; "
        "print(no_gpu_here(), no_gpu_here() and resolve_device('auto'), 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    here, auto, loaded = out.stdout.split()
    assert loaded == "False"
    assert auto == ("cpu" if here == "True" else "False")
    if here == "True":  # and torch agrees with the light answer
        assert not torch.cuda.is_available()


def test_memory_cap_goes_to_the_named_cuda_device(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[float, int]] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(
        torch.cuda, "set_per_process_memory_fraction", lambda f, i: calls.append((f, i))
    )
    assert apply_gpu_memory_cap(0.5, "cuda:1") == (True, "GPU memory capped at 50% of cuda:1")
    applied, why = apply_gpu_memory_cap(0.5, "cpu")
    assert not applied
    assert "not CUDA" in why
    assert calls == [(0.5, 1)]
