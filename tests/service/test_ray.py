"""The ray executor on a real local Ray cluster of several nodes (``ray.cluster_utils.Cluster``,
as Ray's own tests do): CPU only, one CPU per node, one cluster for the whole module.

Nothing here runs ``ray stop`` (it would kill every Ray process on the machine): the module
starts its own cluster and shuts down only that. Jobs are the toy task (a tiny real torch
model with real checkpoints, ``smalltrain.tasks.toy``) and, for the sweep, the real audio
task on tiny synthetic sounds. Tests wait on job states and events, never on fixed sleeps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Ray is optional (`smalltrain[ray]`): without it these tests skip, saying so.
ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'smalltrain[ray]')")
from ray.cluster_utils import Cluster  # noqa: E402

from smalltrain.engine.checkpoint_index import list_checkpoints, newest_verified  # noqa: E402
from smalltrain.engine.jobs import JobStatus, TrainingJob  # noqa: E402
from smalltrain.service.execution.ray.executor import RayExecutor  # noqa: E402
from smalltrain.service.execution.ray.node import CACHE_ENV  # noqa: E402
from smalltrain.service.manager import JobSpec, TrainingManager  # noqa: E402
from smalltrain.store.models import ModelStore  # noqa: E402
from smalltrain.tasks import EXTRA_TASKS_ENV, register_extra_tasks  # noqa: E402
from smalltrain.tasks import toy as toytask  # noqa: E402
from tests.support import audio as audiojob  # noqa: E402

pytestmark = pytest.mark.slow

_ROOT = str(Path(__file__).resolve().parents[2])

_MIB = 2**20


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A head (no CPU: jobs never run on the driver's node) and two 1-CPU worker nodes."""
    tmp = tmp_path_factory.mktemp("ray")
    patch = pytest.MonkeyPatch()
    # Worker processes inherit the nodes' environment: the toy task and a cache of our own.
    patch.setenv(EXTRA_TASKS_ENV, f"toy={toytask.TARGET}")
    patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [_ROOT, os.environ.get("PYTHONPATH")])))
    patch.setenv(CACHE_ENV, str(tmp / "node-caches"))
    register_extra_tasks()
    c = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,
            "include_dashboard": False,
            "object_store_memory": 80 * _MIB,
        },
    )
    for _ in range(2):
        c.add_node(num_cpus=1, object_store_memory=80 * _MIB)
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False, configure_logging=False)
    try:
        yield c
    finally:
        ray.shutdown()
        c.shutdown()
        patch.undo()


@pytest.fixture
def node_data(tmp_path: Path) -> Path:
    """A toy dataset of three files of different sizes (not the shared one-file ``data``), so
    what a job ships to its node is more than one file."""
    folder = tmp_path / "toydata"
    folder.mkdir()
    for i in range(3):
        (folder / f"f{i}.txt").write_text("x" * (1000 + i))
    return folder


def _manager(home: Path, cluster: Cluster, **kw: Any) -> TrainingManager:
    executor = RayExecutor(cluster.address, grace_s=kw.pop("grace_s", 10.0))
    return TrainingManager.open(home, executor=executor, max_concurrent=kw.pop("max_concurrent", 2))


def _events(manager: TrainingManager, job_id: str, kind: str | None = None) -> list[dict[str, Any]]:
    rows = manager.jobs.history.events_after(job_id, 0, limit=100_000)
    return [e for _, e in rows if kind is None or e.get("type") == kind]


def _logs(manager: TrainingManager, job_id: str, needle: str) -> list[str]:
    return [e["message"] for e in _events(manager, job_id, "log") if needle in e["message"]]


def _node_of(message: str) -> str:
    """The node id prefix in "running on Ray node HOST [1a2b3c4d], ..."."""
    return message.split("[", 1)[1].split("]", 1)[0]


def _until(check: Callable[[], Any], timeout: float = 120.0, what: str = "condition") -> Any:
    """Poll ``check`` (a condition on a job's state, not a fixed sleep) until it is truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _toy(data: Path, **overrides: Any) -> JobSpec:
    return JobSpec(dataset=data, task="toy", overrides=overrides)


def test_two_jobs_at_once_on_two_nodes_and_the_dataset_ships_once_per_node(
    cluster: Cluster, node_data: Path, tmp_path: Path
) -> None:
    with _manager(tmp_path / "home", cluster) as manager:
        first = [
            manager.start_training(_toy(node_data, epochs=3, step_s=0.5, seed=i)) for i in range(2)
        ]
        jobs = [manager.wait(j, timeout=180) for j in first]
        # Two more jobs on the same dataset: both nodes have it cached by now.
        more = [manager.start_training(_toy(node_data, epochs=1, seed=i)) for i in (2, 3)]
        jobs += [manager.wait(j, timeout=180) for j in more]
        executor = manager.executor
        assert isinstance(executor, RayExecutor)

        assert [j.status for j in jobs] == [JobStatus.COMPLETED] * 4, [
            j.status_reason for j in jobs
        ]
        models = manager.list_models()
        assert sorted(m.job_id or "" for m in models) == sorted(j.id for j in jobs)
        for job in jobs:
            kinds = {e["type"] for e in _events(manager, job.id)}
            assert {"training_started", "step", "epoch", "checkpoint", "training_finished"} <= kinds
            assert Path(job.artifacts["weights"]).is_file()  # registered from the head's home
            assert list_checkpoints(Path(job.run_dir or "") / "checkpoints")
        # The first two ran at the same time, so on the two different 1-CPU nodes.
        nodes = [_node_of(_logs(manager, j, "running on Ray node")[0]) for j in first]
        assert len(set(nodes)) == 2
        started = [_events(manager, j, "training_started")[0]["time"] for j in first]
        ended = [_events(manager, j, "training_finished")[0]["time"] for j in first]
        assert max(started) < min(ended)
        # Packed once, fetched once per node, found in the cache by every later job.
        fetched = [m for j in jobs for m in _logs(manager, j.id, "fetched through Ray's object")]
        cached = [m for j in jobs for m in _logs(manager, j.id, "found in the node's cache")]
        assert executor.shipper.packed == 1
        assert len(fetched) == len({node for node, _ in executor.fetches}) == 2
        assert len(cached) == 2


def _keep_checking_checkpoints(run_dir: Path, stop: threading.Event, gaps: list[str]) -> None:
    """From the first checkpoint on, the head's run folder must always hold a valid one."""
    folder = run_dir / "checkpoints"
    seen = False
    while not stop.is_set():
        found = newest_verified(folder)
        if found is not None:
            seen = True
        elif seen:
            gaps.append(f"no valid checkpoint in {folder} at {time.time():.3f}")
        time.sleep(0.01)


def test_losing_the_node_of_a_job_retries_it_from_its_checkpoint_on_the_other(
    cluster: Cluster, node_data: Path, tmp_path: Path
) -> None:
    with _manager(tmp_path / "home", cluster) as manager:
        # A wide model: each batch of checkpoints the node sends (>100 KiB) then lives in that
        # node's object store, and dies with it, as a real model's would.
        job_id = manager.start_training(
            _toy(node_data, epochs=8, step_s=0.15, hidden=8192, lr=0.0005)
        )
        job = _until(
            lambda: (j := manager.get_job(job_id)).run_dir and j.epoch >= 2 and j, what="epoch 2"
        )
        run_dir = Path(job.run_dir)
        stop = threading.Event()
        gaps: list[str] = []
        watcher = threading.Thread(target=_keep_checking_checkpoints, args=(run_dir, stop, gaps))
        watcher.start()
        try:
            node = _node_of(_logs(manager, job_id, "running on Ray node")[0])
            victim = [n for n in cluster.list_all_nodes() if n.node_id.startswith(node)]
            assert len(victim) == 1
            cluster.remove_node(victim[0])
            done = manager.wait(job_id, timeout=180)
        finally:
            stop.set()
            watcher.join()
            cluster.add_node(num_cpus=1, object_store_memory=80 * _MIB)  # for the next tests
            cluster.wait_for_nodes()

        assert done.status is JobStatus.COMPLETED, done.status_reason
        assert gaps == []
        first, second = manager.jobs.history.list_attempts(job_id)
        assert first.outcome == "interrupted"
        assert "the Ray node" in (first.error or "")
        assert f"[{node}]" in (first.error or "")
        assert second.outcome == "completed"
        assert second.resume_from is not None
        moves = [(e["from"], e["to"]) for e in _events(manager, job_id, "status_change")]
        assert ("TRAINING", "INTERRUPTED") in moves
        assert ("INTERRUPTED", "QUEUED") in moves
        retry = [
            e["reason"] for e in _events(manager, job_id, "status_change") if e["to"] == "QUEUED"
        ]
        assert "retry 1 of 2 from ckpt-" in retry[-1]
        nodes = [_node_of(m) for m in _logs(manager, job_id, "running on Ray node")]
        assert len(nodes) == 2
        assert nodes[0] != nodes[1]
        starts = _events(manager, job_id, "training_started")
        assert starts[-1]["start_epoch"] >= 1  # resumed, not started over
        assert done.epoch == 8


def test_cancel_checkpoints_then_resume_completes(
    cluster: Cluster, node_data: Path, tmp_path: Path
) -> None:
    with _manager(tmp_path / "home", cluster) as manager:
        job_id = manager.start_training(_toy(node_data, epochs=4, step_s=0.2))
        _until(lambda: manager.get_job(job_id).step > 0, what="the first step")
        manager.cancel(job_id)
        job = manager.wait(job_id, timeout=60)
        assert job.status is JobStatus.CANCELLED, job.status_reason
        saved = list_checkpoints(Path(job.run_dir or "") / "checkpoints")
        assert saved
        assert saved[-1].reason == "cancel"
        assert newest_verified(Path(job.run_dir or "") / "checkpoints") == saved[-1].path

        manager.resume(job_id)
        job = manager.wait(job_id, timeout=120)
        assert job.status is JobStatus.COMPLETED, job.status_reason
        assert manager.jobs.history.list_attempts(job_id)[-1].resume_from == str(saved[-1].path)


def test_a_job_that_ignores_cancel_has_its_actor_killed_after_the_grace_period(
    cluster: Cluster, node_data: Path, tmp_path: Path
) -> None:
    with _manager(tmp_path / "home", cluster, grace_s=1.0) as manager:
        job_id = manager.start_training(_toy(node_data, epochs=50, step_s=0.2, ignore_cancel=True))
        _until(lambda: manager.get_job(job_id).step > 0, what="the first step")
        asked = time.monotonic()
        manager.cancel(job_id)
        job = manager.wait(job_id, timeout=60)
        assert job.status is JobStatus.CANCELLED
        assert "Ray actor" in (job.status_reason or "")
        assert "killed" in (job.status_reason or "")
        assert time.monotonic() - asked < 30


def test_a_request_no_node_can_meet_fails_at_once_naming_both_sides(
    cluster: Cluster, node_data: Path, tmp_path: Path
) -> None:
    with _manager(tmp_path / "home", cluster) as manager:
        gpu = manager.start_training(_toy(node_data, num_gpus=1))
        cpus = manager.start_training(_toy(node_data, num_cpus=4))
        for job_id, asked in ((gpu, "1 CPU and 1 GPU"), (cpus, "4 CPU and 0 GPU")):
            job = manager.wait(job_id, timeout=60)
            assert job.status is JobStatus.FAILED
            assert f"asks Ray for {asked} on one node" in (job.error or "")
            assert "(1 CPU, 0 GPU)" in (job.error or "")  # what the cluster has
            assert manager.jobs.history.list_attempts(job_id)[-1].finished_at is not None


def test_a_path_every_node_can_read_is_not_shipped_and_jobs_wait_follows_the_job(
    cluster: Cluster, node_data: Path, tmp_path: Path
) -> None:
    with _manager(tmp_path / "home", cluster) as manager:
        job_id = manager.start_training(_toy(node_data, epochs=2, step_s=0.1, ship_dataset=False))
        follower = _cli(tmp_path / "home", "jobs", "wait", job_id, "--quiet")
        out, _ = follower.communicate(timeout=120)
        assert follower.returncode == 0, out  # `jobs wait` follows a Ray job from the database
        assert manager.get_job(job_id).status is JobStatus.COMPLETED
        assert _logs(manager, job_id, "dataset ") == []  # nothing fetched nor cached
        assert manager.executor.shipper.packed == 0  # type: ignore[attr-defined]


def test_a_detection_job_on_ray_gets_its_data_yaml_and_model_file_from_the_head(
    cluster: Cluster, tmp_path: Path
) -> None:
    from smalltrain.tasks.detect.synth import TINY_MODEL_YAML, make_shapes_dataset

    data_yaml = make_shapes_dataset(tmp_path / "shapes", n_train=4, n_val=2)
    model_yaml = tmp_path / "tiny-yolov8n.yaml"  # a file on the head only, named by the config
    model_yaml.write_text(TINY_MODEL_YAML)
    sets = {"base_model": str(model_yaml), "epochs": 1, "batch_size": 4, "image_size": 64}
    with _manager(tmp_path / "home", cluster) as manager:
        job = manager.wait(manager.start_training(JobSpec(dataset=data_yaml, overrides=sets)), 300)
        assert job.status is JobStatus.COMPLETED, job.status_reason
        assert job.config["base_model"] == str(model_yaml)  # the head's record is unchanged
        assert Path(job.artifacts["weights"]).is_file()
        run_dir = Path(job.run_dir or "")
        assert (run_dir / "ultralytics" / "train" / "weights" / "last.pt").is_file()
        assert _logs(manager, job.id, "fetched through Ray's object store")


def _cli(home: Path, *args: str, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "smalltrain.cli.main", "--home", str(home), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kw,
    )


def test_a_head_that_dies_leaves_its_ray_jobs_interrupted_and_resumable(
    cluster: Cluster, node_data: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    with TrainingManager.open(home, autostart=False) as manager:
        job_id = manager.start_training(_toy(node_data, epochs=8, step_s=0.2))
        worker = _cli(home, "worker", "--ray", cluster.address)
        try:
            _until(lambda: manager.get_job(job_id).epoch >= 2, what="epoch 2 on the worker")
        finally:
            worker.kill()  # the head dies without a word; Ray ends the actors it owned
            worker.wait()
        # The dead head left it TRAINING; the next command that reads it sees that nobody owns
        # it any more and settles it (service.recovery): no job is left looking alive.
        job = manager.get_job(job_id)
        assert job.status is JobStatus.INTERRUPTED, job.status_reason
        assert f"Resume it with: smalltrain jobs resume {job_id}" in (job.status_reason or "")

        again = _cli(home, "worker", "--ray", cluster.address)  # finds nothing to run
        out, _ = again.communicate(timeout=120)
        assert again.returncode == 0, out
        assert manager.get_job(job_id).status is JobStatus.INTERRUPTED
        checkpoint = newest_verified(Path(job.run_dir or "") / "checkpoints")
        assert checkpoint is not None

        resumed = _cli(home, "resume", job_id, "--ray", cluster.address)
        out, _ = resumed.communicate(timeout=180)
        assert resumed.returncode == 0, out
        job = manager.get_job(job_id)
        assert job.status is JobStatus.COMPLETED
        assert manager.jobs.history.list_attempts(job_id)[-1].resume_from == str(checkpoint)


def test_an_audio_sweep_on_ray_stops_the_weak_trials_and_registers_the_best(
    cluster: Cluster, tmp_path: Path
) -> None:
    sounds = audiojob.make_audio_dataset(tmp_path / "sounds")
    home = tmp_path / "home"
    rates = ["0.001", "0.000001", "0.002", "0.000002"]  # good, weak, good, weak
    sets = {"epochs": 3, "augmentation_expansion": 4, "preview_every": 0, "checkpoint_every": 1}
    args = [f"--set={k}={v}" for k, v in sets.items()]
    proc = _cli(home, "sweep", str(sounds), "--preset", "tiny", "--vary",
                f"learning_rate={','.join(rates)}", *args, "-j", "2", "--ray", cluster.address,
                "--json")  # fmt: skip
    out, _ = proc.communicate(timeout=400)
    assert proc.returncode == 0, out
    summary = json.loads(out[out.index("\n{") + 1 :])
    trials = {t["trial"]: t for t in summary["trials"]}
    assert summary["status"] == "COMPLETED"
    assert [trials[n]["setting"]["learning_rate"] for n in (1, 2, 3, 4)] == rates
    # The last weak trial reached epoch 1 after a good one had: ASHA stopped it there.
    assert trials[4]["stopped_early"]
    assert trials[4]["status"] == "CANCELLED"
    for t in trials.values():
        if t["stopped_early"]:
            assert len(t["curve"]) < 3
    best = next(t for t in trials.values() if t["job_id"] == summary["best_job_id"])
    assert best["setting"]["learning_rate"] in ("0.001", "0.002")
    done = [t["best"] for t in trials.values() if t["status"] == "COMPLETED"]
    assert best["best"] == min(done)
    models = ModelStore(home / "models").list()
    assert [(m.name, m.job_id) for m in models] == [(summary["best_model"], best["job_id"])]
    with TrainingManager.open(home, autostart=False) as manager:
        jobs: list[TrainingJob] = [manager.get_job(t["job_id"]) for t in trials.values()]
        assert {j.sweep_id for j in jobs} == {summary["id"]}
        nodes = {_node_of(m) for j in jobs for m in _logs(manager, j.id, "running on Ray node")}
        assert len(nodes) == 2  # trials ran on both nodes
