"""One start path: ``JobSpec.from_dict``, the model name reserved with the insert, and the
weights rule by origin, on a real SQLite home (the toy task, and the detection task's planning
on a synthetic shapes dataset; nothing trains here)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from smalltrain.engine.fsutil import sha256_file
from smalltrain.errors import (
    CheckpointError,
    ConfigError,
    DatasetExists,
    ModelExists,
    NotResumable,
    WeightsNotFound,
)
from smalltrain.service.datasets import register_dataset
from smalltrain.service.jobspec import JobSpec
from smalltrain.service.manager import TrainingManager
from smalltrain.service.summary import job_summary
from smalltrain.service.weights import WeightsStore
from smalltrain.tasks.detect.synth import make_shapes_dataset
from tests.support.weights import yolo_pt

pytestmark = pytest.mark.usefixtures("toy_task")


@pytest.fixture
def shapes(tmp_path: Path) -> Path:
    return make_shapes_dataset(tmp_path / "shapes", n_train=2, n_val=1)


def _error(data: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        JobSpec.from_dict(data)
    return caught.value


def test_from_dict_reads_every_field_and_round_trips() -> None:
    data = {"dataset": "kicks", "task": "toy", "model_name": "m", "preset": "tiny",
            "overrides": {"epochs": 2}, "config": None, "device": "cpu", "run_dir": None,
            "priority": 3}  # fmt: skip
    spec = JobSpec.from_dict(data)
    assert spec == JobSpec("kicks", "toy", "m", "tiny", {"epochs": 2}, None, "cpu", None, 3)
    assert JobSpec.from_dict(spec.to_dict()) == spec
    assert JobSpec.from_dict({"dataset": "kicks", "preset": None}).preset == "auto"


def test_from_dict_refuses_unknown_fields_naming_them() -> None:
    error = _error({"dataset": "kicks", "epochs": 5})
    assert error.field == "epochs"
    assert "not a field of a job" in str(error)
    assert "dataset, task, model_name" in str(error)
    error = _error({"dataset": "kicks", "zeta": 1, "alpha": 2})
    assert error.field == "alpha, zeta"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"dataset": "kicks", "config": "x"}, "config"),
        ({"dataset": "kicks", "overrides": ["epochs=5"]}, "overrides"),
        ({"dataset": "kicks", "overrides": {"epochs": 5}, "config": 3}, "config"),
        ({"dataset": 7}, "dataset"),
        ({"dataset": ""}, "dataset"),
        ({"dataset": "kicks", "priority": True}, "priority"),
        ({"dataset": "kicks", "priority": "high"}, "priority"),
        ({"dataset": "kicks", "model_name": ["a"]}, "model_name"),
        ({}, "dataset"),
        ({"dataset": None, "task": "toy"}, "dataset"),
    ],
)
def test_from_dict_names_the_field_of_a_wrong_type(data: dict[str, Any], field: str) -> None:
    # no dataset at all is a ConfigError too (a TypeError from the dataclass was a 500)
    assert _error(data).field == field


def test_messages_quote_at_most_about_100_characters() -> None:
    long = "x" * 5000
    for data in ({"dataset": long}, {"dataset": "k", long: 1}, {"dataset": "k", "config": long}):
        message = str(_error(data))
        assert len(message) < 400, message
        assert "5002 characters" in message or "characters" in message
    assert len(str(_error([long]))) < 300


def test_a_folder_registered_while_a_start_inspects_it_is_not_registered_twice(
    home: Path, data: Path
) -> None:
    # a start resolves a new folder, then inspects it; meanwhile another start (or
    # `smalltrain datasets add`) registers the same folder. The first must use that record,
    # not add the folder again under a second name (the race behind a flaky reservation:
    # "toydata" and "toydata-2" for one folder, so one model name never collided)
    from smalltrain.service.datasets import record_for
    from smalltrain.service.planning import plan_job

    manager = TrainingManager.open(home, autostart=False)
    try:

        def inspect_meanwhile(task: Any, path: Path) -> Any:
            report = task.inspect(path)
            manager.datasets.add(record_for("theirs", path, "toy", report))
            return report

        job = plan_job(JobSpec(dataset=str(data), task="toy"), manager.datasets, manager.models,
                       home, inspect=inspect_meanwhile)  # fmt: skip
        assert job.dataset == "theirs"
        assert [d.name for d in manager.datasets.list()] == ["theirs"]
    finally:
        manager.close()


def test_ten_concurrent_starts_with_one_name_give_one_job(home: Path, data: Path) -> None:
    # ten "processes" (one manager and one database connection each) start at once
    managers = [TrainingManager.open(home, autostart=False) for _ in range(10)]
    barrier = threading.Barrier(10)
    results: list[Any] = [None] * 10

    def start(i: int) -> None:
        barrier.wait()
        try:
            results[i] = managers[i].start_training(
                JobSpec(dataset=str(data), task="toy", model_name="dup")
            )
        except Exception as exc:  # noqa: BLE001 - collected and checked below
            results[i] = exc

    threads = [threading.Thread(target=start, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        ids = [r for r in results if isinstance(r, str)]
        refused = [r for r in results if isinstance(r, ModelExists)]
        assert len(ids) == 1, results
        assert len(refused) == 9, results
        assert "already being trained" in str(refused[0])
        jobs = managers[0].list_jobs()
        assert [(j.id, j.model_name) for j in jobs] == [(ids[0], "dup")]
    finally:
        for m in managers:
            m.close()


def test_a_remote_start_takes_no_run_folder(home: Path, data: Path, tmp_path: Path) -> None:
    with TrainingManager.open(home, autostart=False) as manager:
        spec = JobSpec(dataset=str(data), task="toy", run_dir=str(tmp_path / "elsewhere"))
        with pytest.raises(ConfigError) as caught:
            manager.start_training(spec, origin="remote")
        assert caught.value.field == "run_dir"
        assert manager.list_jobs() == []
        assert manager.start_training(spec)  # the local user may choose one


def _detect(manager: TrainingManager, shapes: Path, base_model: str, **kw: Any) -> str:
    spec = JobSpec(dataset=str(shapes), overrides={"base_model": base_model, "epochs": 1})
    return manager.start_training(spec, **kw)


def test_weights_by_path_only_from_the_local_user(
    home: Path, shapes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = tmp_path / "mine.pt"
    yolo_pt(weights, "not loaded while planning")
    monkeypatch.chdir(tmp_path)
    with TrainingManager.open(home, autostart=False) as manager:
        for given in (str(weights), "mine.pt", "./mine.pt"):
            with pytest.raises(ConfigError) as caught:
                _detect(manager, shapes, given, origin="remote")
            assert caught.value.field == "base_model"
            assert "POST /api/weights" in str(caught.value)
        assert manager.list_jobs() == []
        # locally, a relative path becomes absolute: a worker elsewhere finds the same file
        job = manager.get_job(_detect(manager, shapes, "./mine.pt"))
        assert job.config["base_model"] == str(weights)


def test_a_missing_pt_is_refused_before_anything_is_queued(home: Path, shapes: Path) -> None:
    with TrainingManager.open(home, autostart=False) as manager:
        with pytest.raises(WeightsNotFound, match="smalltrain weights add"):
            _detect(manager, shapes, "nowhere/gone.pt")
        # a config given whole (the Train tab's) is checked the same way
        spec = JobSpec(dataset=str(shapes), config={"base_model": "gone.pt", "epochs": 1})
        with pytest.raises(WeightsNotFound):
            manager.start_training(spec)
        assert manager.list_jobs() == []


def test_a_remote_start_names_registered_weights_whose_sha256_matches(
    home: Path, shapes: Path, tmp_path: Path
) -> None:
    store = WeightsStore(home)
    store.folder.mkdir(parents=True)
    placed = store.folder / "byhand.pt"
    yolo_pt(placed, "placed by hand")
    index = store.folder / "weights.json"
    index.write_text('{"reg.pt": {"sha256": "0000"}}')
    yolo_pt(store.folder / "reg.pt", "changed since registered")
    with TrainingManager.open(home, autostart=False) as manager:
        for name, why in (
            ("byhand.pt", "placed in the weights folder by hand"),
            ("reg.pt", "changed since it was registered"),
            ("unknown.pt", "no registered weights of that name"),
        ):
            # (a changed file is refused by the task's own check, before the rule's)
            with pytest.raises((ConfigError, CheckpointError), match=why):
                _detect(manager, shapes, name, origin="remote")
        assert manager.list_jobs() == []
        # a bare model .yaml (built from scratch, nothing pickled) is fine from anywhere
        job = manager.get_job(_detect(manager, shapes, "yolov8n.yaml", origin="remote"))
        assert job.config["base_model"] == "yolov8n.yaml"
        # recorded with the sha256 it has: accepted, by name
        index.write_text(json.dumps({"reg.pt": {"sha256": sha256_file(store.folder / "reg.pt")}}))
        job = manager.get_job(_detect(manager, shapes, "reg.pt", origin="remote"))
        assert job.config["base_model"] == "reg.pt"
    assert os.path.isfile(placed)


def test_a_job_that_failed_on_its_config_is_not_resumed_but_edited(
    home: Path, shapes: Path, tmp_path: Path
) -> None:
    weights = tmp_path / "gone.pt"
    yolo_pt(weights, "there when the job was planned")
    with TrainingManager.open(home, executor="inline", autostart=False) as manager:
        job_id = _detect(manager, shapes, str(weights))
        weights.unlink()  # gone before the job runs: it fails on its config
        manager.run_scheduler(until_idle=True)
        job = manager.get_job(job_id)
        assert job.status.value == "FAILED"
        assert (job.error or "").startswith("WeightsNotFound:")
        with pytest.raises(NotResumable, match="Edit and retry") as caught:
            manager.resume(job_id)
        assert f"smalltrain train --config {job.run_dir}/config.yaml" in str(caught.value)
        # the status line and the summary say the same: the message, and edit and retry
        assert (job.status_reason or "").startswith("weights '"), job.status_reason
        summary = job_summary(manager, job, None)
        assert "failed on its config" in summary["resume"], summary["resume"]
        assert "Edit and retry" in summary["resume"]


def test_a_dataset_name_is_not_moved_to_another_folder_unasked(home: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    for folder in (first, second):
        folder.mkdir()
        (folder / "a.txt").write_text(folder.name)
    with TrainingManager.open(home, autostart=False) as manager:
        register_dataset(manager.datasets, "toys", first, "toy")
        register_dataset(manager.datasets, "toys", first, "toy")  # the same folder: refreshed
        with pytest.raises(DatasetExists, match=r"registered for .*one.*--replace"):
            register_dataset(manager.datasets, "toys", second, "toy")
        assert manager.datasets.get("toys").path == str(first)
        register_dataset(manager.datasets, "toys", second, "toy", replace=True)
        assert manager.datasets.get("toys").path == str(second)


class _Task:
    weights_fields = ("base_model",)


@pytest.mark.parametrize("value", ["/etc/passwd", "~/x.pt", "./x", "../up", "a/../../b", "C:x"])
def test_a_remote_config_value_that_reads_as_a_path_is_refused(home: Path, value: str) -> None:
    from smalltrain.service.weights import check_weights

    with pytest.raises(ConfigError) as caught:
        check_weights(_Task(), {"monitor": value}, home, "remote")
    assert caught.value.field == "monitor"
    assert "take no paths" in str(caught.value)


def test_a_metric_key_with_a_slash_is_not_a_path_but_a_weights_field_is(home: Path) -> None:
    """``monitor: val/sc`` (the README's API example) starts; ``base_model: sub/x.pt`` does not."""
    from smalltrain.service.weights import check_weights

    config = {"monitor": "val/sc", "label": "metrics/mAP50(B)"}
    assert check_weights(_Task(), config, home, "remote") == config
    with pytest.raises(ConfigError) as caught:
        check_weights(_Task(), {"base_model": "sub/x.pt"}, home, "remote")
    assert caught.value.field == "base_model"
