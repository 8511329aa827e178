"""The Job tab's notice rule, in-process on a real ``Backend`` (a real SQLite home, the toy task,
no scheduler, so a job stays where the test puts it): a Stop or Resume notice records the job's
status when it was given; the poll clears it once the job has ended in another status, also
when nothing else on the page changed, and keeps it otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smalltrain.service.jobspec import JobSpec
from smalltrain.ui.viewmodels.backend import Backend
from smalltrain.ui.views.job import JobPanel

pytestmark = pytest.mark.usefixtures("toy_task")


@pytest.fixture
def panel(home: Path) -> Iterator[JobPanel]:
    backend = Backend(home, run_scheduler=False)
    try:
        yield JobPanel(backend)
    finally:
        backend.close()


def _skipped(value: Any) -> bool:
    return isinstance(value, dict) and value.get("__type__") == "update" and len(value) == 1


def test_a_notice_stays_while_its_status_holds_and_leaves_once_the_job_ended_otherwise(
    panel: JobPanel, data: Path
) -> None:
    start = panel.backend.manager.start_training
    job_id = start(JobSpec(dataset=data, task="toy"))
    n = JobPanel.N
    memory = panel.render(job_id)[0]

    # a notice given while the job was QUEUED stays while it is
    assert all(_skipped(v) for v in panel.tick(job_id, memory, "QUEUED"))
    # the job ends in another status: the notice leaves, the header is redrawn...
    panel.backend.cancel(job_id, "graceful")
    ticked = panel.tick(job_id, memory, "QUEUED")
    assert ticked[n:] == ["", None]
    assert "CANCELLED" in ticked[1]
    shown = ticked[0]  # what the page shows now
    # ...also when the page already shows the ended job (it ended before the notice came)
    ticked = panel.tick(job_id, shown, "QUEUED")
    assert ticked[n:] == ["", None]
    assert all(_skipped(v) for v in ticked[:n])
    # a notice about the status the job ended in stays
    assert all(_skipped(v) for v in panel.tick(job_id, shown, "CANCELLED"))


def test_stop_and_resume_notices_record_the_status_they_were_given_at(
    panel: JobPanel, data: Path
) -> None:
    job_id = panel.backend.manager.start_training(JobSpec(dataset=data, task="toy"))
    n = JobPanel.N
    # Stop on a queued job cancels it at once: the notice is about a CANCELLED job
    out = panel.act("stop", job_id)
    assert len(out) == n + 2
    assert f"Job {job_id}: stop requested" in out[n]
    assert out[n + 1] == "CANCELLED"
    # Resume refused (a job cancelled before it started has no checkpoint): an error, with no
    # status to clear it by; it stays until another job is shown
    out = panel.act("resume", job_id)
    assert "Cannot resume" in out[n]
    assert out[n + 1] is None
    assert panel.act("stop", None)[n + 1] is None
