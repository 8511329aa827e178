"""GPU memory: a job over its cap fails with our error and the queue goes on; a busy GPU holds
the next job.

Jobs run through the manager in real child processes (the toy task). Without a GPU the
out-of-memory error is a fake (``fake_oom_at_step`` raises the exception torch raises when CUDA
memory runs out); the tests marked ``gpu`` do the same with real allocations on a real card and
skip where there is none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from smalltrain.engine.jobs import JobStatus
from smalltrain.engine.resources import ResourceMonitor, gpu_oom_error
from smalltrain.errors import GpuOutOfMemory
from smalltrain.service.manager import JobSpec, TrainingManager

pytestmark = pytest.mark.usefixtures("toy_task")


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


needs_gpu = pytest.mark.skipif(not _cuda(), reason="needs a CUDA device")


def _spec(data: Path, device: str | None = None, **overrides: Any) -> JobSpec:
    return JobSpec(dataset=data, task="toy", overrides=overrides, device=device)


def _over_cap_then_next(home: Path, data: Path, device: str | None, **over: Any) -> None:
    """Queue a job that needs more GPU memory than its cap, then a plain one; both end."""
    with TrainingManager.open(home, executor="process") as manager:
        greedy = manager.start_training(_spec(data, device, max_gpu_memory_percent=0.3, **over))
        after = manager.start_training(_spec(data, device))
        job = manager.wait(greedy, timeout=180)
        assert job.status is JobStatus.FAILED
        error = job.error or ""
        assert error.startswith("GpuOutOfMemory: the job ran out of GPU memory on"), error
        assert "max_gpu_memory_percent=0.3" in error
        assert "Lower batch_size" in error
        assert "Traceback" not in error
        assert not job.error_traceback
        assert manager.wait(after, timeout=180).status is JobStatus.COMPLETED


def test_out_of_gpu_memory_is_our_error_and_the_queue_goes_on(home: Path, data: Path) -> None:
    _over_cap_then_next(home, data, None, fake_oom_at_step=1)


def test_the_error_names_the_cap_the_card_and_the_request() -> None:
    import torch

    raised = torch.OutOfMemoryError(
        "CUDA out of memory. Tried to allocate 2.50 GiB. GPU 0 has a total capacity of 79.19 GiB"
    )
    error = gpu_oom_error(raised, 0.3, "cuda:0", total_bytes=80 * 2**30)
    assert isinstance(error, GpuOutOfMemory)
    assert str(error) == (
        "the job ran out of GPU memory on cuda:0 under its cap max_gpu_memory_percent=0.3 "
        "(24.0 GiB of 80.0 GiB); it asked for 2.50 GiB more. Lower batch_size (or image_size), "
        "or raise max_gpu_memory_percent (--set max_gpu_memory_percent=0.9)"
    )
    uncapped = gpu_oom_error(RuntimeError("CUDA out of memory."), None, "cuda", total_bytes=None)
    assert uncapped is not None
    assert "under the memory of cuda" in str(uncapped)
    assert gpu_oom_error(RuntimeError("shape mismatch"), 0.3, "cuda") is None
    assert gpu_oom_error(MemoryError(), 0.3, "cuda") is None  # host RAM is another story


@pytest.mark.gpu
@needs_gpu
def test_the_memory_cap_really_caps_on_a_gpu(home: Path, data: Path) -> None:
    # 50% of the card asked for under a 30% cap: torch's allocator refuses it
    _over_cap_then_next(home, data, "cuda", gpu_alloc_fraction=0.5)


@pytest.mark.gpu
@needs_gpu
def test_a_busy_gpu_holds_the_next_job(home: Path, data: Path) -> None:
    import torch

    monitor = ResourceMonitor(gpu_threshold=0.1)
    total = torch.cuda.get_device_properties(0).total_memory
    held = torch.empty(int(total * 0.2), dtype=torch.uint8, device="cuda")
    with TrainingManager.open(
        home, executor="process", resource_monitor=monitor, resource_check_s=0.2
    ) as manager:
        job_id = manager.start_training(_spec(data, "cuda"))
        reason = ""
        for _ in range(600):
            reason = manager.get_job(job_id).status_reason or ""
            if reason.startswith("waiting: GPU"):
                break
            manager.hub.wait_change(0.05)
        assert reason.startswith("waiting: GPU"), reason
        assert manager.get_job(job_id).status is JobStatus.QUEUED
        del held
        torch.cuda.empty_cache()
        manager._kick()
        assert manager.wait(job_id, timeout=180).status is JobStatus.COMPLETED
