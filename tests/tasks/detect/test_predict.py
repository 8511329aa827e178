"""Using a trained detector: predict/validate (Python API) and the predict/val CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from smalltrain.cli import detect as detect_cli
from smalltrain.engine.context import JobContext, TrainResult
from smalltrain.errors import WeightsNotFound
from smalltrain.tasks.detect import DetectTask, TrainingConfig, predict, validate
from smalltrain.tasks.detect.synth import TINY_MODEL_YAML, make_shapes_dataset
from tests.support.data import COCO8, PRETRAINED, require


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainResult, Path, Path]:
    """One tiny finished run shared by this module: (result, data.yaml, home)."""
    root = tmp_path_factory.mktemp("trained")
    data = make_shapes_dataset(root / "shapes")
    model_yaml = root / "tiny-yolov8n.yaml"
    model_yaml.write_text(TINY_MODEL_YAML)
    config = TrainingConfig(
        base_model=str(model_yaml), epochs=2, batch_size=4, image_size=64, freeze_layers=0
    )
    home = root / "home"
    ctx = JobContext("j", config, data, root / "run", cache_dir=home / "cache")
    result = DetectTask().train(ctx)
    assert result.weights is not None
    return result, data, home


def test_predict_writes_json_and_images(
    trained: tuple[TrainResult, Path, Path], tmp_path: Path
) -> None:
    result, data, home = trained
    assert result.weights is not None
    out = tmp_path / "pred"
    records = predict(result.weights, data.parent / "images" / "val", out, conf=0.001, home=home)
    assert len(records) == 4
    saved = json.loads((out / "predictions.json").read_text())
    assert saved == records
    for record in records:
        assert Path(record["annotated"]).is_file()
        assert (record["width"], record["height"]) == (64, 64)
        for box in record["boxes"]:
            assert box["class_name"] in ("rect", "circle")
            assert 0 <= box["confidence"] <= 1
            assert len(box["xyxy"]) == 4


def test_predict_real_boxes_with_pretrained(tmp_path: Path) -> None:
    records = predict(
        require(PRETRAINED), require(COCO8) / "images" / "val", tmp_path / "p", home=tmp_path / "h"
    )
    boxes = [b for r in records for b in r["boxes"]]
    assert boxes
    assert {b["class_name"] for b in boxes} <= {"Normal", "Fall"}
    x1, y1, x2, y2 = boxes[0]["xyxy"]
    assert x2 > x1 >= 0
    assert y2 > y1 >= 0
    assert x2 > 1


def test_predict_on_a_file_named_in_latin_1_writes_it_under_the_same_name(
    trained: tuple[TrainResult, Path, Path], tmp_path: Path
) -> None:
    """``café.png`` written by a Latin-1 system (byte 0xE9, not UTF-8): OpenCV's imwrite
    crashed the process on such a name (SIGSEGV, no exception), so this runs the CLI in a child
    process; the annotated copy and the label file keep the image's own bytes."""
    result, data, home = trained
    folder = tmp_path / "photos"
    folder.mkdir()
    source = sorted((data.parent / "images" / "val").glob("*.png"))[0]
    odd = folder / os.fsdecode(b"caf\xe9.png")
    odd.write_bytes(source.read_bytes())
    (folder / "plain.png").write_bytes(source.read_bytes())
    # and two files that are no images: skipped and named, the others still predicted
    (folder / "broken.jpg").write_text("not a picture")
    (folder / "empty.png").write_bytes(b"")
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "smalltrain.cli.main", "--home", str(home), "predict",
         str(result.weights), str(folder), "--out", str(out), "--save-txt", "--conf", "0.001"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "2 images" in done.stdout
    assert "caf\\xe9.png:" in done.stdout  # printable, escaped
    assert (out / odd.name).read_bytes()[:4] == b"\x89PNG"
    assert (out / "labels" / os.fsdecode(b"caf\xe9.txt")).is_file()
    assert "skipped 2 files that could not be read" in done.stderr
    assert "broken.jpg, empty.png" in done.stderr
    assert "Traceback" not in done.stderr
    saved = json.loads((out / "predictions.json").read_text())
    names = [folder / n for n in ("broken.jpg", "empty.png", "plain.png")]
    assert [Path(r["image"]) for r in saved] == sorted([odd, *names])
    errors = {Path(r["image"]).name: r.get("error") for r in saved}
    assert errors[odd.name] is None
    assert "cannot read this image" in errors["broken.jpg"]
    assert not (out / "broken.jpg").exists()


def test_predict_on_files_none_of_which_is_an_image_says_so(
    trained: tuple[TrainResult, Path, Path], tmp_path: Path
) -> None:
    from smalltrain.errors import DatasetError

    result, _, home = trained
    assert result.weights is not None
    (tmp_path / "a.jpg").write_text("x")
    with pytest.raises(DatasetError, match=r"none of the 1 image\(s\) could be read"):
        predict(result.weights, tmp_path / "a.jpg", tmp_path / "out", home=home)


def test_the_use_tab_names_unreadable_files_and_draws_only_the_others() -> None:
    from smalltrain.ui.viewmodels.detections import overlay_html, predictions_html

    box = {"class_id": 0, "class_name": "rect", "confidence": 0.9, "xyxy": [1, 2, 3, 4]}
    records: list[dict[str, Any]] = [
        {"image": "a.png", "file": "000-a.png", "width": 8, "height": 8, "boxes": [box]},
        {"image": "bad.jpg", "file": "001-bad.jpg", "width": None, "height": None,
         "boxes": [], "error": "cannot read this image"},
    ]  # fmt: skip
    shown = predictions_html(records, 0.25)
    assert "1 image(s), 1 box(es)" in shown
    assert "1 file(s) could not be read as images (damaged or empty): bad.jpg" in shown
    drawn = overlay_html("out", records)
    assert "000-a.png" in drawn
    assert "bad.jpg" not in drawn


def test_val_says_when_the_models_classes_are_not_the_datasets(tmp_path: Path) -> None:
    """The fall detector (Normal, Fall) on coco8 (80 classes): scored, and said to compare
    class numbers, not classes (it was scored in silence)."""
    from smalltrain.tasks.detect.predict import class_mismatch

    metrics = validate(require(PRETRAINED), require(COCO8) / "coco8.yaml", imgsz=64,
                       device="cpu", home=tmp_path / "h")  # fmt: skip
    (warning,) = metrics["warnings"]
    assert warning.startswith("the model has 2 classes (Normal, Fall) and the dataset 80 ")
    assert "person, bicycle, car, motorcycle, ..." in warning
    assert "Classes are matched by number" in warning
    same_count = class_mismatch(["cat", "dog"], ["dog", "cat"])
    assert same_count is not None
    assert "0: 'dog' is the model's 'cat'; 1: 'cat' is the model's 'dog'" in same_count
    assert class_mismatch(["cat"], ["cat"]) is None
    assert class_mismatch([], ["cat"]) is None


def test_predict_errors(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFound):
        predict(tmp_path / "none.pt", tmp_path, tmp_path / "o", home=tmp_path / "h")


def test_validate_returns_our_keys(trained: tuple[TrainResult, Path, Path]) -> None:
    result, data, home = trained
    assert result.weights is not None
    before = sorted(p.name for p in data.parent.rglob("*"))
    metrics = validate(result.weights, data, home=home)
    assert {"val/mAP50", "val/mAP50-95", "metrics/precision", "metrics/recall"} <= set(metrics)
    assert metrics["val/images"] == 4
    assert sorted(p.name for p in data.parent.rglob("*")) == before  # no cache in the user folder


def _app() -> typer.Typer:
    app = typer.Typer()
    detect_cli.register(app)
    return app


def test_cli_predict_and_val_with_model_path(
    trained: tuple[TrainResult, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, data, home = trained
    monkeypatch.setenv("SMALLTRAIN_HOME", str(home))
    runner = CliRunner()
    images = str(data.parent / "images" / "val")
    out = tmp_path / "cli"
    res = runner.invoke(
        _app(), ["predict", "--model", str(result.weights), images, "--out", str(out), "--json"]
    )
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.stdout)) == 4
    assert (out / "predictions.json").is_file()
    res = runner.invoke(
        _app(), ["val", str(result.run_dir / "export"), "--data", str(data), "--json"]
    )
    assert res.exit_code == 0, res.output
    assert "val/mAP50" in json.loads(res.stdout)
    res = runner.invoke(_app(), ["predict", images, "--out", str(out)])
    assert res.exit_code != 0  # neither --dataset nor --model


def test_cli_predict_with_active_model(
    trained: tuple[TrainResult, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smalltrain.paths import models_dir
    from smalltrain.store import ModelEntry, ModelStore

    result, data, _ = trained
    home = tmp_path / "home"
    monkeypatch.setenv("SMALLTRAIN_HOME", str(home))
    runner = CliRunner()
    args = ["predict", "--dataset", "shapes", str(data.parent / "images" / "val"), "--out", "o"]
    res = runner.invoke(_app(), args)
    assert res.exit_code == 1
    assert "no active model for dataset 'shapes'" in res.output
    assert result.weights is not None
    extra = result.extra
    store = ModelStore(models_dir(home))
    store.save(ModelEntry(
        dataset="shapes",
        name="tiny",
        weights=result.weights,
        task="detect",
        config=extra["config_yaml"],
        metrics=extra["metrics"],
        base_model=extra["base_model"],
        epochs_completed=result.epochs_completed,
        headline=(result.headline_metric, result.headline_value),
        dataset_snapshot=extra["dataset_snapshot"],
        dataset_fingerprint=extra["dataset_fingerprint"],
    ))  # fmt: skip
    store.set_active("shapes", "tiny")
    args[-1] = str(tmp_path / "o")
    res = runner.invoke(_app(), [*args, "--json"])
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.stdout)) == 4


# --- the detection results: computed once at the end of training, again by val ----------------


def _png_size(path: Path) -> tuple[int, int]:
    import cv2

    image = cv2.imread(str(path))
    assert image is not None, path
    return image.shape[1], image.shape[0]


def test_training_keeps_the_results_of_best_pt(trained: tuple[TrainResult, Path, Path]) -> None:
    from smalltrain.tasks.detect.results_files import listed_files, read_results

    result, data, _ = trained
    assert not result.extra.get("results_missing")
    found = read_results(result.run_dir)
    assert found is not None
    assert found["source"] == "best.pt"
    assert found["images"] == 4
    assert found["confusion_matrix"]["labels"] == ["rect", "circle", "background"]
    matrix = found["confusion_matrix"]["matrix"]
    labels = [ln.split()[0] for f in (data.parent / "labels" / "val").glob("*.txt")
              for ln in f.read_text().splitlines()]  # fmt: skip
    # every labelled object lands in its true class's column once (found, confused or missed)
    assert [sum(row[c] for row in matrix) for c in range(2)] == [
        labels.count("0"),
        labels.count("1"),
    ]
    assert set(found["per_class"]) <= {"rect", "circle"}
    assert set(found["pr_curves"]["classes"]) <= {"rect", "circle"}
    assert len(found["pr_curves"]["recall"]) == 101
    errors = [w["missed"] + w["false"] for w in found["worst"]]
    assert errors == sorted(errors, reverse=True)
    assert all(e > 0 for e in errors)
    folder = result.run_dir / "results"
    for name in listed_files(found):
        assert (folder / name).is_file(), name
    for w in found["worst"]:  # ground truth beside the prediction: two 360-px halves
        assert _png_size(folder / w["file"]) == (2 * 360 + 8, 360 + 30)
    assert _png_size(folder / "confusion_matrix.png")[0] >= 300


def test_worst_images_rank_by_errors_and_leave_perfect_ones_out() -> None:
    from smalltrain.tasks.detect.results import worst_images

    images = [
        {"file": "a.png", "missed": 0, "false": 0},
        {"file": "b.png", "missed": 1, "false": 2},
        {"file": "c.png", "missed": 3, "false": 0},
        {"file": "d.png", "missed": 0, "false": 1},
    ]
    assert [i["file"] for i in worst_images(images, 2)] == ["c.png", "b.png"]
    assert [i["file"] for i in worst_images(images)] == ["c.png", "b.png", "d.png"]


def test_a_failure_to_compute_results_is_a_warning_and_recorded(tmp_path: Path) -> None:
    from smalltrain.engine.events import WarningEvent
    from smalltrain.service.registration import model_files
    from smalltrain.tasks.detect.task import _write_results

    events: list[object] = []
    ctx = JobContext("j", {}, tmp_path, tmp_path / "run", emit=events.append)
    why = _write_results(ctx, model=None)  # no final evaluation ran
    assert why.startswith("detection results not computed")
    assert [e.code for e in events if isinstance(e, WarningEvent)] == ["results_missing"]
    job = type("Job", (), {"task": "detect", "dataset": "d", "dataset_path": "p", "config": {}})
    result = TrainResult(
        "completed", 1, 1, tmp_path, None, None, None, extra={"results_missing": why}
    )
    assert model_files(job, result)[1]["results_missing"] == why  # type: ignore[arg-type]


def test_cli_val_prints_the_matrix_and_writes_the_results(
    trained: tuple[TrainResult, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, data, home = trained
    monkeypatch.setenv("SMALLTRAIN_HOME", str(home))
    out = tmp_path / "bundle"
    res = CliRunner().invoke(
        _app(), ["val", str(result.run_dir / "export"), str(data), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    for part in (
        "per class",
        "confusion matrix (boxes with confidence > 0.25; columns: true class)",
        "pred background",
        f"results in {out}/: results.json, confusion_matrix.png, pr_curve.png, worst/",
    ):
        assert part in res.stdout, part
    saved = json.loads((out / "results.json").read_text())
    assert "export" in saved["source"] or "best.pt" in saved["source"]
    assert (out / "confusion_matrix.png").is_file()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-results-")] == []
    # --json on another dataset without --out: the results in the JSON, no files kept
    res = CliRunner().invoke(_app(), ["val", str(result.run_dir / "export"), str(data), "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    assert got["folder"] is None
    assert got["results"]["confusion_matrix"]["labels"][-1] == "background"


def test_a_batch_layout_it_does_not_know_stops_the_recording_not_the_validation(
    trained: tuple[TrainResult, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smalltrain.tasks.detect import results

    def unknown(*args: object) -> None:
        raise KeyError("im_file")

    monkeypatch.setattr(results, "_image_record", unknown)
    result, data, home = trained
    assert result.weights is not None
    assert "val/mAP50" in validate(result.weights, data, home=home)  # the metrics still come
    with pytest.raises(ValueError, match=r"could not be recorded \(KeyError: 'im_file'\)"):
        validate(result.weights, data, home=home, results_dir=tmp_path / "r")
