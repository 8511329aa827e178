"""A dead parent never leaves a live-looking job, and no model is registered twice.

Real processes and signals: the parent is an attached ``smalltrain train`` or a worker process
running the home's scheduler, killed with SIGKILL; its training child notices, checkpoints and
exits. Then any command that reads or changes the job settles it first. Registration is
idempotent per job, and a model name is reserved when its job is queued.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from smalltrain.engine.jobs import JobStatus
from smalltrain.engine.locks import try_lock
from smalltrain.errors import ModelExists, NotResumable
from smalltrain.service.manager import JobSpec, TrainingManager
from smalltrain.service.recovery import RECOVERY_ROLE
from smalltrain.service.scheduler import Scheduler, lock_path, scheduler_running
from tests.support.cli import cli, cli_json

pytestmark = pytest.mark.usefixtures("toy")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "home"
    monkeypatch.setenv("SMALLTRAIN_HOME", str(root))
    return root


def _open(home: Path) -> TrainingManager:
    return TrainingManager.open(home, autostart=False)


def _attached_train(home: Path, data: Path, *sets: str) -> tuple[subprocess.Popen[str], str]:
    args = [a for s in sets for a in ("--set", s)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "smalltrain.cli.main", "--home", str(home), "train", str(data),
         "--task", "toy", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith("job "), first
    return proc, first.split()[1].rstrip(":")


def _kill_after_checkpoint(home: Path, proc: subprocess.Popen[str], job_id: str) -> int:
    """SIGKILL the parent once the job has a checkpoint; return the training child's pid."""
    child = 0
    try:
        with _open(home) as manager:
            for _, event in manager.follow(job_id, timeout=120):
                if event["type"] == "training_started":
                    child = int(event["info"]["pid"])
                if event["type"] == "checkpoint":
                    break
    finally:
        proc.kill()  # no cleanup at all
        proc.communicate()
    return child


def _wait_gone(pid: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while psutil.pid_exists(pid) and time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.05)
    assert not psutil.pid_exists(pid), f"training child {pid} still running"


def test_kill_9_of_attached_train_then_resume_works_at_once(home: Path, toydata: Path) -> None:
    proc, job_id = _attached_train(home, toydata, "epochs=4", "step_s=0.05")
    _kill_after_checkpoint(home, proc, job_id)
    # at once: the orphaned child may still be writing its last checkpoint
    cli("resume", job_id)
    shown = cli_json("jobs", "show", job_id)
    assert shown["status"] == "COMPLETED", shown["status_reason"]
    assert [a["outcome"] for a in shown["attempt_list"]] == ["interrupted", "completed"]
    models = cli_json("models", "list")
    assert [m["job_id"] for m in models] == [job_id]
    with _open(home) as manager:
        steps = [s for s, _ in manager.jobs.history.metric_series(job_id, "train/loss")]
    assert steps == sorted(set(steps))  # no step recorded twice across the attempts
    assert steps[-1] == 15


def test_jobs_list_show_and_wait_settle_a_dead_owner(home: Path, toydata: Path) -> None:
    proc, job_id = _attached_train(home, toydata, "epochs=50", "step_s=0.05")
    child = _kill_after_checkpoint(home, proc, job_id)
    with _open(home) as manager:
        job = manager.wait(job_id, timeout=60)  # before: waited forever on a TRAINING job
    assert job.status is JobStatus.INTERRUPTED
    _wait_gone(child)
    (listed,) = cli_json("jobs", "list")
    assert listed["status"] == "INTERRUPTED"
    shown = cli_json("jobs", "show", job_id)
    assert shown["status"] == "INTERRUPTED"
    assert "Resume it with" in shown["status_reason"]
    waited = cli("jobs", "wait", job_id, "--quiet", code=1)
    assert "INTERRUPTED" in waited.stderr


_WORKER = """
import os, signal, sys
from smalltrain.service import manager as m
from smalltrain.service.execution import sink
from smalltrain.store import models
point = sys.argv[2]
if point == "epoch-1-received":
    real_call = sink.JobEventSink.__call__
    def die_on_epoch_1(self, event):
        if event.type == "epoch" and event.epoch == 1:
            os.kill(os.getpid(), signal.SIGKILL)  # the child's epoch event dies with the parent
        real_call(self, event)
    sink.JobEventSink.__call__ = die_on_epoch_1
elif point == "after-registry":
    real = m.register_model
    def register_then_die(*args, **kwargs):
        fields = real(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)  # the model is registered, the job not COMPLETED
        return fields
    m.register_model = register_then_die
else:
    real_swap = models.ModelStore._swap_in
    def swap_then_die(staging, folder):
        real_swap(staging, folder)
        os.kill(os.getpid(), signal.SIGKILL)  # the folder is in place, registry.json not written
    models.ModelStore._swap_in = staticmethod(swap_then_die)
m.TrainingManager.open(sys.argv[1], autostart=False).run_scheduler(until_idle=True)
"""


def _run_worker_that_dies(home: Path, point: str) -> None:
    worker = subprocess.run([sys.executable, "-c", _WORKER, str(home), point], check=False)
    assert worker.returncode == -signal.SIGKILL


def test_parent_killed_after_registering_completes_the_job_no_duplicate(
    home: Path, toydata: Path
) -> None:
    with _open(home) as manager:
        job_id = manager.start_training(
            JobSpec(dataset=toydata, task="toy", model_name="crash3", overrides={"epochs": 2})
        )
    _run_worker_that_dies(home, "after-registry")
    shown = cli_json("jobs", "show", job_id)
    assert shown["status"] == "COMPLETED", shown["status_reason"]
    assert shown["model_name"] == "crash3"
    result = cli("resume", job_id, code=1)
    assert "already completed" in result.stderr
    with _open(home) as manager:
        with pytest.raises(NotResumable):
            manager.resume(job_id)
        assert [m.name for m in manager.list_models()] == ["crash3"]


def test_parent_killed_mid_registration_registers_once_under_its_name(
    home: Path, toydata: Path
) -> None:
    with _open(home) as manager:
        job_id = manager.start_training(
            JobSpec(dataset=toydata, task="toy", model_name="crash4", overrides={"epochs": 2})
        )
    _run_worker_that_dies(home, "mid-registration")
    assert cli_json("jobs", "show", job_id)["status"] == "INTERRUPTED"
    cli("resume", job_id)
    shown = cli_json("jobs", "show", job_id)
    assert shown["status"] == "COMPLETED", shown["status_reason"]
    with _open(home) as manager:
        (model,) = manager.list_models()
        assert model.name == "crash4"  # not crash4-<id>: the half-made folder was its own
        assert model.job_id == job_id
        folders = sorted(p.name for p in model.path.parent.iterdir())
    assert folders == ["crash4"]


def test_two_trains_with_one_name_at_the_same_moment(home: Path, toydata: Path) -> None:
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def start() -> None:
        with _open(home) as manager:
            spec = JobSpec(dataset=toydata, task="toy", model_name="same")
            barrier.wait()
            try:
                outcomes.append(manager.start_training(spec))
            except ModelExists as exc:
                outcomes.append(str(exc))

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    refused = [o for o in outcomes if "already being trained" in o]
    assert len(refused) == 1, outcomes
    # one after the other (the first still queued): refused in the same words
    result = cli("train", str(toydata), "--task", "toy", "-n", "same", "--detach", code=1)
    assert "already being trained" in result.stderr
    (job,) = cli_json("jobs", "list")
    assert job["model_name"] == "same"


def test_two_trains_with_one_name_from_two_terminals(home: Path, toydata: Path) -> None:
    cmd = [sys.executable, "-m", "smalltrain.cli.main", "--home", str(home), "train",
           str(toydata), "--task", "toy", "-n", "same", "--executor", "thread"]  # fmt: skip
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        outputs = [p.communicate(timeout=180) for p in procs]  # then each has a returncode
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    results = [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs, strict=True)]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    refused = next(err for code, _, err in results if code == 1)
    assert "already" in refused
    assert "Traceback" not in refused
    models = cli_json("models", "list")
    assert [m["name"] for m in models] == ["same"]  # never a silent "same-<id>"


def test_auto_names_in_one_second_stay_distinct(home: Path, toydata: Path) -> None:
    barrier = threading.Barrier(2)
    ids: list[str] = []

    def start() -> None:
        with _open(home) as manager:
            barrier.wait()
            ids.append(manager.start_training(JobSpec(dataset=toydata, task="toy")))

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with _open(home) as manager:
        names = {manager.get_job(i).model_name for i in ids}
    assert len(names) == 2


def test_a_starting_scheduler_waits_for_a_recovering_client(home: Path) -> None:
    home.mkdir(parents=True)
    held = try_lock(lock_path(home), role=RECOVERY_ROLE)
    assert held is not None
    threading.Timer(0.3, held.release).start()
    assert scheduler_running(home) is None  # a client settling jobs is not a scheduler
    held = try_lock(lock_path(home), role=RECOVERY_ROLE)
    assert held is not None
    threading.Timer(0.3, held.release).start()
    with _open(home) as manager:
        scheduler = Scheduler(manager.jobs, home, manager.executor, lambda j, o: {},
                              lambda j, e: None)  # fmt: skip
        scheduler.acquire()  # no SchedulerBusy
        assert (scheduler_running(home) or {}).get("pid") == os.getpid()
        assert scheduler._home_lock is not None
        scheduler._home_lock.release()


def test_epoch_metrics_a_dead_parent_never_stored_are_taken_back(home: Path, toydata: Path) -> None:
    with _open(home) as manager:
        job_id = manager.start_training(
            JobSpec(dataset=toydata, task="toy", overrides={"epochs": 4, "step_s": 0.02})
        )
    _run_worker_that_dies(home, "epoch-1-received")
    cli("resume", job_id)
    with _open(home) as manager:
        job = manager.get_job(job_id)
        assert job.status is JobStatus.COMPLETED, job.status_reason
        epochs = [
            e for e, _ in manager.jobs.history.metric_series(job_id, "train/loss", scope="epoch")
        ]
    assert epochs == [0, 1, 2, 3]  # epoch 1 came back from the run's events.jsonl
