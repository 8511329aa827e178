"""The HTTP API's start and weights endpoints in-process (Starlette's TestClient over the
guarded API app and a real ``Backend``: a real SQLite home, real child processes for planning).

- ten concurrent ``POST /api/jobs`` with one model name give exactly one job;
- the pickle chain: a harmless pickle (it would only create a marker file) uploaded into the
  home and into a registered dataset, named as ``base_model`` by absolute, relative and ``~/``
  path or by bare name: every start is refused with 400, no job is queued, and the marker never
  appears; uploading it as weights is refused too;
- ``POST /api/weights`` registers an upload and answers its sha256; a taken name is 409.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from smalltrain.tasks.detect.synth import make_shapes_dataset
from smalltrain.ui.viewmodels.backend import Backend
from tests.support.api import served
from tests.support.data import PRETRAINED, require

pytestmark = pytest.mark.usefixtures("toy_task")


class Marker:
    """Unpickling this creates the marker file: the stand-in for code a .pt could run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


@pytest.fixture
def api(home: Path) -> Iterator[tuple[TestClient, Backend]]:
    """The API behind the same guards as ``smalltrain ui`` (an upload the guards refused
    once passed here, where the routes stood alone)."""
    with served(home, run_scheduler=False) as s:
        yield s.client, s.backend


def test_ten_concurrent_starts_with_one_name_give_one_job(
    api: tuple[TestClient, Backend], tmp_path: Path
) -> None:
    client, _ = api
    data = tmp_path / "toydata"
    data.mkdir()
    (data / "a.txt").write_text("x")
    spec = {"dataset": str(data), "task": "toy", "model_name": "dup"}
    assert client.post("/api/datasets", json={"name": "toys", "path": str(data),
                                              "kind": "toy"}).status_code == 201  # fmt: skip
    spec["dataset"] = "toys"
    with cf.ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda _: client.post("/api/jobs", json=spec), range(10)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] + [409] * 9, [a.json() for a in answers]
    refused = next(a.json()["error"] for a in answers if a.status_code == 409)
    assert refused["type"] == "ModelExists"
    assert "'dup'" in refused["message"]
    jobs = client.get("/api/jobs").json()
    assert [j["model_name"] for j in jobs] == ["dup"]


def test_unknown_and_mistyped_fields_are_400_naming_them(api: tuple[TestClient, Backend]) -> None:
    client, _ = api
    answer = client.post("/api/jobs", json={"dataset": "x", "epochs": 5})
    assert answer.status_code == 400
    assert answer.json()["error"]["message"].startswith("epochs=5: not a field of a job")
    answer = client.post("/api/jobs", json={"dataset": "x", "config": "x"})
    assert answer.status_code == 400
    assert answer.json()["error"]["message"].startswith("config='x'")
    answer = client.post("/api/jobs", json={"dataset": "d" * 5000})
    assert answer.status_code == 400
    assert len(answer.json()["error"]["message"]) < 400


def _write_pickle(path: Path, marker: Path) -> Path:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": Marker(marker)}, path)
    return path


def test_the_pickle_chain_is_refused_and_nothing_runs(
    api: tuple[TestClient, Backend],
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, backend = api
    marker = tmp_path / "MARKER-code-ran"
    data_yaml = make_shapes_dataset(tmp_path / "shapes", n_train=2, n_val=1)
    assert client.post("/api/datasets", json={"name": "shapes", "path": str(data_yaml)}
                       ).status_code == 201  # fmt: skip
    in_uploads = _write_pickle(backend.ui.uploads / "evil" / "yolo11n.pt", marker)
    in_dataset = _write_pickle(data_yaml.parent / "images" / "evil.pt", marker)
    monkeypatch.setenv("HOME", str(tmp_path))  # "~/..." is the server user's own home
    monkeypatch.chdir(in_dataset.parent)  # a bare name would find the file here
    tries = [
        str(in_uploads),
        str(in_dataset),
        os.path.relpath(in_uploads, in_dataset.parent),
        "~/" + str(in_dataset.relative_to(tmp_path)),
        "evil.pt",
    ]
    for given in tries:
        for body in (
            {"dataset": "shapes", "overrides": {"base_model": given}},
            {"dataset": "shapes", "config": {"base_model": given}},
            {"dataset": "shapes", "preset": "ultralytics", "overrides": {"base_model": given}},
        ):
            answer = client.post("/api/jobs", json=body)
            assert answer.status_code == 400, (given, answer.json())
            message = answer.json()["error"]["message"]
            assert message.startswith("base_model="), message
            assert "POST /api/weights" in message
    # uploaded as weights, it is read without running it and refused: not a detection model
    with in_dataset.open("rb") as f:
        answer = client.post("/api/weights", files={"file": ("evil.pt", f)})
    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == "WrongModelKind"
    assert client.get("/api/weights").json() == []
    assert client.get("/api/jobs").json() == []
    assert not marker.exists()


def test_weights_upload_registers_with_sha256_and_a_taken_name_is_409(
    api: tuple[TestClient, Backend], tmp_path: Path
) -> None:
    client, _ = api
    weights = require(PRETRAINED)
    with weights.open("rb") as f:
        answer = client.post("/api/weights", files={"file": ("fall.pt", f)})
    assert answer.status_code == 201, answer.json()
    entry = answer.json()
    assert entry["name"] == "fall.pt"
    assert entry["state"] == "ok"
    assert len(entry["sha256"]) == 64
    assert entry["source"] == "upload fall.pt"
    assert [e["name"] for e in client.get("/api/weights").json()] == ["fall.pt"]
    with weights.open("rb") as f:
        again = client.post("/api/weights", files={"file": ("x.pt", f)}, data={"name": "fall.pt"})
    assert again.status_code == 409
    assert "fall.pt" in again.json()["error"]["message"]
    # a job started here may now name it
    data_yaml = make_shapes_dataset(tmp_path / "shapes", n_train=2, n_val=1)
    body = {"dataset": str(data_yaml), "overrides": {"base_model": "fall.pt", "epochs": 1}}
    answer = client.post("/api/jobs", json=body)
    assert answer.status_code == 201, answer.json()
    assert answer.json()["config"]["base_model"] == "fall.pt"
