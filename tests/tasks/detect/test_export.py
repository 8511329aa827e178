"""Detection export on real data: the shared pretrained YOLOv8s exported to ONNX through
``smalltrain export`` (offline: nothing may start a process or open a connection), then
``predict`` and ``val`` on real held-out photos with the .pt and the .onnx: the same number of
boxes per image at confidence 0.25, and every matched box with IoU > 0.95."""

from __future__ import annotations

import inspect
import json
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from smalltrain.cli.main import app
from tests.support.data import COCO8, PRETRAINED, register_pretrained_detector, require

pytest.importorskip("onnxruntime", reason="the [export] extra is not installed")

IMGSZ = 320


def iou(a: list[float], b: list[float]) -> float:
    """Intersection over union of two xyxy boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def matched_ious(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> list[float]:
    """Greedy matching by IoU within a class: the IoU of each box of ``ours`` with its match."""
    free = list(theirs)
    found = []
    for box in sorted(ours, key=lambda b: -b["confidence"]):
        same = [t for t in free if t["class_id"] == box["class_id"]]
        if not same:
            found.append(0.0)
            continue
        best = max(same, key=lambda t: iou(box["xyxy"], t["xyxy"]))
        free.remove(best)
        found.append(iou(box["xyxy"], best["xyxy"]))
    return found


def _no_network_or_installs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record (and refuse) every connection and child process while exporting."""
    tried: list[str] = []

    def refuse(what: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            # ctypes.util.find_library runs ldconfig or cc to look a library up, at the first
            # import of some modules (whichever test imports them first): refused, not counted
            lookup = any(f.filename.endswith("ctypes/util.py") for f in inspect.stack())
            if not lookup:
                tried.append(f"{what}: {args[:2]!r}")
            raise OSError(f"refused by the test: {what}")

        return call

    monkeypatch.setattr(socket.socket, "connect", refuse("socket.connect"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(subprocess, "Popen", refuse("subprocess"))
    return tried


def _two_class_coco8(folder: Path) -> Path:
    """coco8's photos with its people labelled as class 0 of the fall detector's two classes."""
    shutil.copytree(require(COCO8) / "images", folder / "images")
    for split in ("train", "val"):
        (folder / "labels" / split).mkdir(parents=True)
        for label in (COCO8 / "labels" / split).glob("*.txt"):
            people = [ln for ln in label.read_text().splitlines() if ln.split()[:1] == ["0"]]
            (folder / "labels" / split / label.name).write_text("\n".join(people) + "\n")
    yaml = folder / "data.yaml"
    yaml.write_text(
        f"path: {folder}\ntrain: images/val\nval: images/val\nnames:\n  0: Normal\n  1: Fall\n"
    )
    return yaml


def _home_with_the_pretrained_detector(tmp_path: Path) -> Path:
    """A home whose registry holds the shared pretrained YOLOv8s as ``falls/v8s``."""
    home = tmp_path / "home"
    register_pretrained_detector(home)
    return home


@pytest.mark.slow
def test_onnx_export_matches_the_pt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from smalltrain.tasks.detect.predict import predict, validate

    home = _home_with_the_pretrained_detector(tmp_path)
    tried = _no_network_or_installs(monkeypatch)
    args = ["--home", str(home), "export", "falls/v8s", "--format", "onnx"]
    result = CliRunner().invoke(app, [*args, "--image-size", str(IMGSZ), "--json"])
    monkeypatch.undo()
    assert result.exit_code == 0, result.output
    assert tried == []
    onnx = Path(json.loads(result.stdout)["path"])
    assert onnx.name == "best.onnx"
    assert onnx.is_file()
    shown = CliRunner().invoke(app, ["--home", str(home), "models", "show", "falls/v8s", "--json"])
    assert [e["format"] for e in json.loads(shown.stdout)["exports"]] == ["onnx"]

    # predict: the same boxes from the .pt (torch) and the .onnx (onnxruntime)
    images = sorted((COCO8 / "images").rglob("*.jpg"))
    kwargs: dict[str, Any] = {"conf": 0.25, "imgsz": IMGSZ, "device": "cpu", "home": home}
    reference = predict(PRETRAINED, images, **kwargs)
    exported = predict(onnx, images, **kwargs)
    assert sum(len(r["boxes"]) for r in reference) > 0
    for ref, got in zip(reference, exported, strict=True):
        assert len(got["boxes"]) == len(ref["boxes"]), ref["image"]
        assert all(v > 0.95 for v in matched_ious(got["boxes"], ref["boxes"])), ref["image"]
    # without --image-size the export predicts at the size it was made at (its metadata), not
    # at Ultralytics' 640: the same boxes as above
    from smalltrain.tasks.detect.predict import export_image_size

    assert export_image_size(onnx) == IMGSZ
    assert export_image_size(PRETRAINED) is None
    unsized = predict(onnx, images, **{k: v for k, v in kwargs.items() if k != "imgsz"})
    assert [r["boxes"] for r in unsized] == [r["boxes"] for r in exported]

    # val takes the .onnx too, and scores it as the .pt
    data = _two_class_coco8(tmp_path / "people")
    want = validate(PRETRAINED, data, imgsz=IMGSZ, device="cpu", home=home)
    got = validate(onnx, data, imgsz=IMGSZ, device="cpu", home=home)
    assert got["val/mAP50"] == pytest.approx(want["val/mAP50"], abs=0.02)


def test_a_missing_package_names_its_extra_and_a_wrong_format_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smalltrain.service import exports

    home = _home_with_the_pretrained_detector(tmp_path)
    monkeypatch.setattr(exports, "_importable", lambda name: name != "openvino")
    result = CliRunner().invoke(app, ["--home", str(home), "export", "v8s", "--format", "openvino"])
    assert result.exit_code == 1
    assert "pip install 'smalltrain[openvino]'" in result.output
    result = CliRunner().invoke(app, ["--home", str(home), "export", "v8s", "--format", "coreml"])
    assert result.exit_code == 1
    assert "exports to onnx, torchscript, openvino" in result.output


def test_openvino_telemetry_is_declined() -> None:
    pytest.importorskip("openvino_telemetry")
    from openvino_telemetry import Telemetry

    from smalltrain.tasks.detect.export import no_openvino_telemetry

    no_openvino_telemetry()
    telemetry = Telemetry(tid="x", app_name="smalltrain-test", app_version="0",
                          backend="ga4", enable_opt_in_dialog=False)  # fmt: skip
    assert telemetry.consent is False
