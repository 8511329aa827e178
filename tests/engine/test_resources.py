"""ResourceMonitor on the real machine: psutil values, honest GPU fields, callbacks, sampler."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import psutil
import pytest

from smalltrain.engine.resources import (
    ResourceMonitor,
    ResourceStatus,
    apply_gpu_memory_cap,
    gpu_snapshot,
    process_tree_rss,
)

HAS_GPU = bool(gpu_snapshot())


def test_check_reports_real_values_in_range() -> None:
    status = ResourceMonitor().check()
    assert 0.0 < status.ram_percent <= 100.0
    assert 0.0 <= status.cpu_percent <= 100.0
    assert status.process_rss_bytes is None  # no pid watched
    assert status.to_dict()["ram_percent"] == status.ram_percent


@pytest.mark.skipif(HAS_GPU, reason="this machine has a GPU")
def test_without_a_gpu_the_gpu_fields_say_so() -> None:
    status = ResourceMonitor(gpu_threshold=0.0).check()
    assert status.gpu_percent is None
    assert status.gpus == []
    assert status.gpu_available is False
    assert status.note == "no GPU detected"
    assert not any("GPU" in r for r in status.reasons)


def test_thresholds_are_fractions() -> None:
    with pytest.raises(ValueError, match="fraction"):
        ResourceMonitor(ram_threshold=85)


def test_callbacks_fire_when_constrained_and_not_otherwise() -> None:
    seen: list[ResourceStatus] = []
    monitor = ResourceMonitor(gpu_threshold=0.0, ram_threshold=0.0)
    remove = monitor.add_callback(seen.append)
    status = monitor.check()
    assert status.constrained
    assert any(r.startswith("RAM ") for r in status.reasons)
    assert seen == [status]
    assert monitor.latest is status
    remove()
    monitor.check()
    assert len(seen) == 1

    relaxed = ResourceMonitor(gpu_threshold=1.0, ram_threshold=1.0)
    relaxed.add_callback(seen.append)
    assert not relaxed.check().constrained
    assert len(seen) == 1


def test_a_failing_callback_does_not_silence_the_others() -> None:
    seen: list[ResourceStatus] = []

    def broken(status: ResourceStatus) -> None:
        raise RuntimeError("boom")

    monitor = ResourceMonitor(ram_threshold=0.0)
    monitor.add_callback(broken)
    monitor.add_callback(seen.append)
    monitor.check()
    assert len(seen) == 1


def test_sampler_runs_and_stops_promptly() -> None:
    got = threading.Event()
    monitor = ResourceMonitor(ram_threshold=0.0)
    monitor.add_callback(lambda status: got.set())
    monitor.start(interval=30.0)
    try:
        assert got.wait(timeout=60)
        assert monitor.running
    finally:
        began = time.monotonic()
        monitor.stop()
    assert time.monotonic() - began < 5.0  # it did not sit out its 30 s interval
    assert not monitor.running


def test_process_tree_rss_counts_children() -> None:
    code = (
        "import subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import sys; sys.stdin.read()'],"
        " stdin=subprocess.PIPE)\n"
        "print(child.pid, flush=True)\n"
        "sys.stdin.read()\n"
        "child.stdin.close(); child.wait()\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        own = psutil.Process(parent.pid).memory_info().rss
        child = psutil.Process(child_pid).memory_info().rss
        status = ResourceMonitor(pid=parent.pid).check()
        assert status.process_rss_bytes is not None
        # Both processes are idle interpreters, so the tree is near the sum of the two.
        assert status.process_rss_bytes >= 0.8 * (own + child)
        assert status.process_rss_bytes > own
    finally:
        parent.communicate("", timeout=60)
    assert process_tree_rss(parent.pid) is None  # gone


def test_gpu_cap_without_cuda_says_why() -> None:
    applied, reason = apply_gpu_memory_cap(0.5, "cpu")
    assert not applied
    assert "not CUDA" in reason
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        apply_gpu_memory_cap(80, "cuda")


@pytest.mark.gpu
def test_gpu_fields_and_cap_on_cuda() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    status = ResourceMonitor().check()
    assert status.gpu_available
    assert status.gpu_percent is not None
    assert 0.0 <= status.gpu_percent <= 100.0
    gpu = status.gpus[0]
    assert 0 < gpu.memory_used_bytes <= gpu.memory_total_bytes
    assert gpu.name in status.note
    applied, reason = apply_gpu_memory_cap(0.5, "cuda:0")
    assert applied, reason
