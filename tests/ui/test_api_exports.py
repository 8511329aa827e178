"""The export endpoints in-process: a real tiny audio model registered in the served home is
exported through ``POST /api/models/{dataset}/{name}/exports`` (in the backend's helper
process, the same service call as ``smalltrain export``), listed, and downloaded as a zip."""

from __future__ import annotations

import io
import zipfile

import pytest

from smalltrain import paths
from smalltrain.errors import MissingDependency
from smalltrain.store import ModelEntry, ModelStore
from smalltrain.ui.server.inputs import error_response
from tests.support.api import Served, api
from tests.support.audio import TrainedAudio

__all__ = ["api"]

pytest.importorskip("onnxruntime", reason="the [export] extra is not installed")


def test_export_list_and_download(api: Served, trained_audio: TrainedAudio) -> None:
    ModelStore(paths.models_dir(api.home)).save(ModelEntry(
        dataset="tones", name="tiny", weights=trained_audio.model, task="audio",
        config={}, metrics={},
        base_model=None, epochs_completed=2, headline=("best_val_sc", 0.5),
        dataset_snapshot="", dataset_fingerprint="",
    ))  # fmt: skip
    route = "/api/models/tones/tiny/exports"
    assert api.client.get(route).json() == []
    assert api.client.get(f"{route}/onnx").status_code == 404
    made = api.client.post(route, json={"format": "onnx"})
    assert made.status_code == 201, made.text
    assert made.json()["main"] == "decoder.onnx"
    assert [e["format"] for e in api.client.get(route).json()] == ["onnx"]
    download = api.client.get(f"{route}/onnx")
    assert download.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(download.content)).namelist()
    assert "onnx/example.py" in names
    assert "onnx/decoder.onnx" in names
    wrong = api.client.post(route, json={"format": "openvino"})
    assert wrong.status_code == 400
    assert "exports to onnx" in wrong.json()["error"]["message"]
    assert api.client.post(route, json={"format": "onnx", "path": "/x"}).status_code == 400
    assert api.client.post("/api/models/tones/nope/exports", json={}).status_code == 404
    assert api.anonymous.get(f"{route}/onnx").status_code == 401


def test_a_missing_package_is_501() -> None:
    answer = error_response(MissingDependency("install with: pip install 'smalltrain[export]'"))
    assert answer.status_code == 501
