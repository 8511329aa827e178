"""A job queued by another process wakes the home's scheduler at once (``service.wakeup``)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from smalltrain.engine.jobs import JobStatus
from smalltrain.service.execution.executors import InlineExecutor
from smalltrain.service.manager import JobSpec, TrainingManager
from smalltrain.service.scheduler import Scheduler
from smalltrain.service.wakeup import WakeListener, wake

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the wake socket is Linux's (elsewhere: polls)"
)


def test_one_listener_per_home_and_a_wake_reaches_it(tmp_path: Path) -> None:
    woken = threading.Event()
    first = WakeListener(tmp_path, woken.set)
    assert first.start()
    assert not WakeListener(tmp_path, woken.set).start()  # the name is taken
    wake(tmp_path / "other")  # another home's scheduler is not woken
    assert not woken.wait(0.2)
    wake(tmp_path)
    assert woken.wait(5)
    first.close()
    again = WakeListener(tmp_path, woken.set)
    assert again.start()  # free again at once
    again.close()


@pytest.mark.usefixtures("toy_task")
def test_a_job_queued_elsewhere_starts_without_waiting_for_the_idle_poll(
    tmp_path: Path, data: Path
) -> None:
    """The scheduler here polls only once a minute; the manager that queues the job (as a
    ``smalltrain train`` beside a running worker would) wakes it."""
    home = tmp_path / "home"
    with TrainingManager.open(home, autostart=False) as client:
        scheduler = Scheduler(
            client.jobs, home, InlineExecutor(), lambda job, outcome: {}, lambda *a: None,
            idle_poll_s=60.0,
        )  # fmt: skip
        idle = threading.Event()
        wait = scheduler.wake.wait

        def idle_wait(timeout: float | None = None) -> bool:
            idle.set()  # the loop has looked at the queue and sleeps
            return wait(timeout)

        scheduler.wake.wait = idle_wait  # type: ignore[method-assign]
        scheduler.acquire()
        thread = threading.Thread(target=scheduler.run, daemon=True)
        thread.start()
        try:
            assert idle.wait(60)
            job_id = client.start_training(JobSpec(dataset=data, task="toy"))
            deadline = time.monotonic() + 20
            while client.get_job(job_id).status is JobStatus.QUEUED:
                assert time.monotonic() < deadline, "the scheduler was not woken"
                time.sleep(0.05)
        finally:
            scheduler.stop()
            thread.join(60)
