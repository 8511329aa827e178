"""Sweeps on this machine: planning, early stopping, the best registered, pruning, the CLI.

Real SQLite, real child processes (the process executor), no mocks. The toy task
(``smalltrain.tasks.toy``) is a minimal real task: its learning rate decides how fast its
validation loss falls, so a tiny rate makes a clearly weak trial. The detection sweep at the
end fine-tunes the real pretrained detector from ``../shared/data`` (skipped without it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from smalltrain.engine.jobs import JobStatus
from smalltrain.errors import ConfigError
from smalltrain.service.manager import TrainingManager
from smalltrain.service.planning import JobSpec
from smalltrain.service.sweeps.spec import SweepSpec, parse_vary, plan_sweep, trial_settings
from smalltrain.store.models import ModelStore
from tests.support import audio as audiojob
from tests.support.data import PRETRAINED, SHARED

COCO8 = SHARED / "detection" / "coco8"


pytestmark = pytest.mark.usefixtures("toy_task")


def test_vary_and_trial_settings() -> None:
    vary = parse_vary(["seed", "lr0=0.0005, 0.001"])
    assert vary == {"seed": None, "lr0": ["0.0005", "0.001"]}
    settings = trial_settings(vary, 4, base_seed=10)
    assert settings == [
        {"lr0": "0.0005", "seed": 10},
        {"lr0": "0.001", "seed": 11},
        {"lr0": "0.0005", "seed": 12},
        {"lr0": "0.001", "seed": 13},
    ]
    assert len(trial_settings({"a": [1, 2], "b": [3, 4]}, None)) == 4  # the whole grid
    with pytest.raises(ConfigError, match="add --vary seed"):
        trial_settings({"lr0": ["1", "2"]}, 3)
    with pytest.raises(ConfigError, match="list its values"):
        trial_settings({"lr0": None}, 2)
    for bad in (["=1,2"], ["lr0="]):
        with pytest.raises(ConfigError, match="--vary"):
            parse_vary(bad)


def _open(home: Path, **kw: Any) -> TrainingManager:
    return TrainingManager.open(home, **kw)


def test_a_bad_trial_setting_fails_the_whole_sweep_before_anything_is_queued(
    tmp_path: Path, data: Path
) -> None:
    with _open(tmp_path / "home", autostart=False) as manager:
        with pytest.raises(ConfigError, match="colour"):
            manager.start_sweep(SweepSpec(dataset=data, task="toy", vary={"colour": ["red"]}))
        assert manager.list_jobs() == []
        assert manager.sweeps.newest() == []


def test_an_audio_seed_sweep_judges_every_trial_on_the_same_validation_split(
    tmp_path: Path,
) -> None:
    sounds = audiojob.make_audio_dataset(tmp_path / "sounds")
    with _open(tmp_path / "home", autostart=False) as manager:
        spec = SweepSpec(dataset=sounds, trials=3, vary={"seed": None}, overrides={"seed": 5})
        record, jobs = plan_sweep(spec, manager.datasets, manager.models, manager.home)
    assert (record.metric, record.mode) == ("val/sc", "min")  # the audio task's own
    assert [j.config["seed"] for j in jobs] == [5, 6, 7]
    assert {j.config["split_seed"] for j in jobs} == {5}


def test_a_local_sweep_stops_weak_trials_early_and_registers_only_the_best(
    tmp_path: Path, data: Path
) -> None:
    home = tmp_path / "home"
    rates = ["0.05", "0.00001", "0.05", "0.00001"]  # good, weak, good, weak
    with _open(home, max_concurrent=1) as manager:
        sweep_id = manager.start_sweep(
            SweepSpec(
                dataset=data,
                task="toy",
                trials=4,
                vary={"seed": None, "lr": ["0.05", "0.00001"]},
                overrides={"epochs": 4, "step_s": 0.05},
                model_name="toy-best",
                activate=True,
                prune=True,
            )
        )
        summary = manager.wait_sweep(sweep_id, timeout=300)
    assert summary.sweep.status == "COMPLETED", summary.sweep.status_reason
    trials = {t.n: t for t in summary.trials}
    assert [trials[n].setting["lr"] for n in (1, 2, 3, 4)] == rates
    # One trial at a time: each weak one reaches epoch 1 after a good one, and stops there.
    for n in (2, 4):
        assert trials[n].job.status is JobStatus.CANCELLED
        assert "stopped early by ASHA after epoch 1" in (trials[n].stopped_early or "")
        assert len(trials[n].curve) == 1
    for n in (1, 3):
        assert trials[n].job.status is JobStatus.COMPLETED
        assert len(trials[n].curve) == 4
    best = min((trials[1], trials[3]), key=lambda t: t.best or 0)
    assert summary.sweep.best_job_id == best.job.id
    assert summary.sweep.best_model == "toy-best"
    assert summary.epochs_run == 10  # 4 + 1 + 4 + 1 instead of 16
    models = ModelStore(home / "models")
    assert [(m.name, m.job_id) for m in models.list()] == [("toy-best", best.job.id)]
    assert models.get_active("toydata").name == "toy-best"  # type: ignore[union-attr]
    for t in summary.trials:  # --prune: only the best keeps its run folder
        assert Path(t.job.run_dir or "").exists() == (t.job.id == best.job.id)
        assert t.job.sweep_id == sweep_id


def test_a_sweep_where_no_trial_completes_ends_failed_and_registers_nothing(
    tmp_path: Path, data: Path
) -> None:
    with _open(tmp_path / "home", max_concurrent=2) as manager:
        sweep_id = manager.start_sweep(
            SweepSpec(
                dataset=data,
                task="toy",
                trials=2,
                vary={"seed": None},
                overrides={"raise_at_step": 1},
            )  # fmt: skip
        )
        summary = manager.wait_sweep(sweep_id, timeout=120)
        assert summary.sweep.status == "FAILED"
        assert "no trial completed with a val/loss" in (summary.sweep.status_reason or "")
        assert manager.list_models() == []


def test_several_jobs_at_once_each_get_their_share_of_the_cores(
    tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    from smalltrain.service.execution.threads import thread_budget

    with _open(tmp_path / "home", max_concurrent=2) as manager:
        sweep_id = manager.start_sweep(
            SweepSpec(
                dataset=data,
                task="toy",
                trials=2,
                vary={"seed": None},
                overrides={"epochs": 1},
                early_stop=False,
            )  # fmt: skip
        )
        summary = manager.wait_sweep(sweep_id, timeout=120)
        infos = [
            e["info"]
            for t in summary.trials
            for _, e in manager.jobs.history.events_after(t.job.id)
            if e["type"] == "training_started"
        ]
    assert [i["threads"] for i in infos] == [thread_budget(2)] * 2
    assert [i["omp_wait_policy"] for i in infos] == ["PASSIVE"] * 2


def test_a_lone_job_gets_every_core_whatever_max_concurrent_allows(
    tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    from smalltrain.service.execution.threads import thread_budget

    with _open(tmp_path / "home", max_concurrent=8) as manager:
        job_id = manager.start_training(JobSpec(dataset=data, task="toy", overrides={"epochs": 1}))
        assert manager.wait(job_id, timeout=120).status is JobStatus.COMPLETED
        infos = [
            e["info"]
            for _, e in manager.jobs.history.events_after(job_id)
            if e["type"] == "training_started"
        ]
    assert [i["threads"] for i in infos] == [thread_budget(1)]


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smalltrain.cli.main", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def _people(dest: Path) -> Path:
    """COCO8's photos with only their "person" boxes, every photo in both splits: the
    pretrained detector's class 0 is a person, so fine-tuning scores above 0 from epoch 1."""
    for split in ("train", "val"):
        (dest / "images" / split).mkdir(parents=True)
        (dest / "labels" / split).mkdir(parents=True)
        for source in ("train", "val"):
            for image in sorted((COCO8 / "images" / source).iterdir()):
                shutil.copy(image, dest / "images" / split / image.name)
                label = COCO8 / "labels" / source / f"{image.stem}.txt"
                rows = [r for r in label.read_text().splitlines() if r.split()[:1] == ["0"]]
                (dest / "labels" / split / f"{image.stem}.txt").write_text("\n".join(rows) + "\n")
    yaml = dest / "data.yaml"
    yaml.write_text(
        "path: .\ntrain: images/train\nval: images/val\nnames:\n  0: person\n  1: other\n"
    )
    return yaml


@pytest.mark.slow
def test_a_detection_sweep_from_the_cli_stops_the_weak_trials(tmp_path: Path) -> None:
    if not (COCO8.is_dir() and PRETRAINED.is_file()):
        pytest.skip(f"shared real data not found at {SHARED} (only in CI/dev checkouts)")
    people = _people(tmp_path / "people")
    home = tmp_path / "home"
    # A graceful stop ends a detection trial after its epoch's validation; in the last epoch it
    # would complete instead, so the trials run 3 epochs and weak ones stop after the second.
    sets = {"base_model": PRETRAINED, "epochs": 3, "batch_size": 4, "image_size": 160}
    proc = _cli(home, "sweep", str(people), "--vary", "lr0=0.0005,0.5,0.001,0.4", "-j", "1",
                *[f"--set={k}={v}" for k, v in sets.items()], "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout[proc.stdout.index("\n{") + 1 :])
    assert (summary["metric"], summary["mode"]) == ("val/mAP50-95", "max")
    trials = {t["trial"]: t for t in summary["trials"]}
    for n in (2, 4):  # lr0 0.5 and 0.4 wreck the pretrained weights: mAP 0 after epoch 1
        assert trials[n]["status"] == "CANCELLED"
        assert trials[n]["stopped_early"]
        assert len(trials[n]["curve"]) < 3
    assert summary["best_job_id"] in (trials[1]["job_id"], trials[3]["job_id"])
    models = ModelStore(home / "models").list()
    assert [m.job_id for m in models] == [summary["best_job_id"]]
    shown = _cli(home, "sweep", "show", summary["id"][:6])
    assert shown.returncode == 0, shown.stderr
    assert "registered as" in shown.stdout
    assert "stopped early" in shown.stdout
    assert not set("━─│") & set(shown.stdout), shown.stdout  # a pipe gets lines, no rules
    listed = _cli(home, "sweep", "list", "--json")
    assert [s["id"] for s in json.loads(listed.stdout)] == [summary["id"]]
    plain = _cli(home, "sweep", "list").stdout
    assert summary["id"] in plain
    assert not set("━─│") & set(plain), plain
