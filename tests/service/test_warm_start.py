"""The warm start (``service.execution.warm``): job processes forked from a server that has
torch and the tasks loaded behave as spawned ones did.

A probe task reports, from inside the job's process, what the job sees: its environment, its
thread pools, whether the server's imports were inherited, and whether CUDA was touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from smalltrain.engine.context import CancelToken, JobContext, ResourceLimits, TrainResult
from smalltrain.service.execution.executors import AttemptSpec, ProcessExecutor
from smalltrain.tasks import EXTRA_TASKS_ENV

ROOT = Path(__file__).resolve().parents[2]
PROBE = "probe=tests.service.test_warm_start:ProbeTask"
ENV_SEEN = (
    "OMP_NUM_THREADS",
    "OMP_WAIT_POLICY",
    "SMALLTRAIN_TEST_MARK",
    "PYTORCH_NVML_BASED_CUDA_CHECK",
)


class ProbeTask:
    """Writes what its process looks like to ``run_dir/probe.json``; trains nothing."""

    name = "probe"

    def config_from_dict(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return dict(data)

    def train(self, ctx: JobContext) -> TrainResult:
        preloaded = "torch._dynamo" in sys.modules  # before this process imported anything
        import torch

        spy = sys.modules.get("tests.support.cuda_spy")
        try:
            from threadpoolctl import threadpool_info

            blas = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
        except ImportError:
            blas = []
        probe = {
            "preloaded": preloaded,
            "threads": torch.get_num_threads(),
            "blas_threads": sorted(set(blas)),
            "env": {name: os.environ.get(name) for name in ENV_SEEN},
            "cuda_initialized": torch.cuda.is_initialized(),
            "bad_fork": torch.cuda._is_in_bad_fork(),
            "spy": None if spy is None else list(spy.CALLS),
        }
        (ctx.run_dir / "probe.json").write_text(json.dumps(probe))
        return TrainResult("completed", 0, 0, ctx.run_dir, None, None, None)


def _probe(executor: ProcessExecutor, run_dir: Path, threads: int) -> dict[str, Any]:
    spec = AttemptSpec(
        job_id="probe",
        task="probe",
        config={},
        dataset_path=run_dir,
        run_dir=run_dir,
        limits=ResourceLimits(cpu_threads=threads),
    )
    outcome = executor.execute(spec, lambda event: None, CancelToken())
    assert outcome.status == "completed", (outcome.error, outcome.traceback)
    result: dict[str, Any] = json.loads((run_dir / "probe.json").read_text())
    return result


def test_a_warm_child_gets_the_jobs_environment_and_thread_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warm = ProcessExecutor()
    if warm.start_method() != "forkserver":
        pytest.skip("the warm start is off here (not Linux, or SMALLTRAIN_WARM_START=0)")
    # Set once the server runs: only the job's own environment can bring them to the child
    # (without it, the child would not even know the probe task).
    monkeypatch.setenv(EXTRA_TASKS_ENV, PROBE)
    monkeypatch.setenv("SMALLTRAIN_TEST_MARK", "the job's")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    spawned = _probe(ProcessExecutor(warm=False), tmp_path / "spawned", 1)
    assert not spawned["preloaded"]
    for threads in (1, 2):
        forked = _probe(warm, tmp_path / f"warm{threads}", threads)
        assert forked["preloaded"]  # torch and the tasks came from the server
        assert forked["threads"] == threads
        assert forked["blas_threads"] in ([], [threads])
        assert forked["env"] == {
            "OMP_NUM_THREADS": str(threads),
            "OMP_WAIT_POLICY": "PASSIVE",
            "SMALLTRAIN_TEST_MARK": "the job's",
            "PYTORCH_NVML_BASED_CUDA_CHECK": None,  # the server's own setting stays there
        }
        if threads == 1:  # exactly what a spawned child of the same job sees
            assert {**forked, "preloaded": False} == spawned


_SERVER_SCRIPT = """
import json, sys
from pathlib import Path
from smalltrain.service.execution import warm
from smalltrain.tasks import register_extra_tasks

register_extra_tasks()
warm.PRELOAD = ("tests.support.cuda_spy", *warm.PRELOAD)  # first: it sees every later import
from smalltrain.service.execution.executors import ProcessExecutor
from tests.service.test_warm_start import _probe

executor = ProcessExecutor()
print(json.dumps({
    "method": executor.start_method(),
    "modules": warm.preload_modules(),
    "probe": _probe(executor, Path(sys.argv[1]), 1),
}))
"""


def test_the_warm_server_imports_everything_without_initialising_cuda(tmp_path: Path) -> None:
    """The server imports torch, torch._dynamo and every task's ``warm_modules``; none of it
    may initialise CUDA (a forked child could not use the GPU then). A spy imported before
    them records any call that would; it runs in a fresh interpreter, with a server of its
    own, so that the spy is the first thing that server imports."""
    env = {
        **os.environ,
        EXTRA_TASKS_ENV: PROBE,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    }
    env.pop("SMALLTRAIN_WARM_START", None)
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_SERVER_SCRIPT), str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    if report["method"] != "forkserver":
        pytest.skip("the warm start is off here (not Linux)")
    assert {
        "torch",
        "torch._dynamo",
        "smalltrain.tasks.audio.training.train",
        "torchvision",
    } <= set(report["modules"])
    probe = report["probe"]
    assert probe["preloaded"]
    assert probe["spy"] == []  # loaded in the server, and nothing asked for CUDA
    assert not probe["cuda_initialized"]
    assert not probe["bad_fork"]
