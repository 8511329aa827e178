"""Dataset inspection: the report, every hard error, partial problems, the resolved copy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from smalltrain.engine.context import DatasetReport
from smalltrain.errors import DatasetError
from smalltrain.tasks.detect import DetectTask, inspect_dataset
from smalltrain.tasks.detect.inspect import DetectionReport
from smalltrain.tasks.detect.synth import make_shapes_dataset
from tests.support.data import BCCD, COCO8, require


def test_report_of_a_clean_dataset(shapes: Path) -> None:
    report = DetectTask().inspect(shapes.parent)  # the folder works as well as the yaml
    assert isinstance(report, DatasetReport)
    assert report.images_per_split == {"train": 8, "val": 4}
    assert report.names == ["rect", "circle"]
    assert sum(report.instances_per_class.values()) > 12
    assert report.problems == []
    assert report.snapshot() == "12 images, 2 classes"
    assert report.median_size == (64, 64)
    assert len(report.fingerprint) == 16
    assert report.to_dict()["snapshot"] == "12 images, 2 classes"
    assert "12 images, 2 classes" in report.format()


def test_one_class_one_problem_one_image_are_said_in_the_singular(tmp_path: Path) -> None:
    data = make_shapes_dataset(tmp_path / "one", n_train=1, n_val=1, classes=1)
    (tmp_path / "one" / "labels" / "train" / "bad.txt").write_text("x y z\n")
    shutil.copy(next((tmp_path / "one" / "images" / "train").iterdir()),
                tmp_path / "one" / "images" / "train" / "bad.png")  # fmt: skip
    report = inspect_dataset(data)
    assert report.snapshot() == "2 images, 1 class", report.snapshot()
    assert "1 problem; 1 image left out:" in report.format(), report.format()
    # what training warns of: the problems, not the whole report again
    issues = report.issues()
    assert issues.startswith("1 problem; 1 image left out:\n  "), issues
    assert "bad.txt" in issues
    assert "median image size" not in issues


def test_relative_path_resolves_against_the_yaml_folder(
    shapes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # 'path: .' means the yaml's folder, not the working dir
    report = inspect_dataset(shapes)
    assert report.root == shapes.parent.resolve()


def test_names_as_list_and_background_images(tmp_path: Path) -> None:
    data = make_shapes_dataset(tmp_path / "d")
    data.write_text("path: .\ntrain: images/train\nval: images/val\nnames: [rect, circle]\n")
    (tmp_path / "d" / "labels" / "train" / "img000.txt").unlink()  # no label file: background
    report = inspect_dataset(data)
    assert report.names == ["rect", "circle"]
    assert report.background_images == 1


def test_fingerprint_changes_with_labels(shapes: Path) -> None:
    before = inspect_dataset(shapes).fingerprint
    label = shapes.parent / "labels" / "train" / "img001.txt"
    label.write_text("0 0.5 0.5 0.2 0.2\n")
    assert inspect_dataset(shapes).fingerprint != before


@pytest.mark.parametrize("key", ["train", "val", "names"])
def test_missing_yaml_key(shapes: Path, key: str) -> None:
    lines = [ln for ln in shapes.read_text().splitlines() if not ln.startswith(key)]
    if key == "names":
        lines = [ln for ln in lines if not ln.startswith("  ")]
    shapes.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=f"missing key '{key}'"):
        inspect_dataset(shapes)


def test_missing_split_folder(shapes: Path) -> None:
    shutil.rmtree(shapes.parent / "images" / "val")
    with pytest.raises(DatasetError, match="the val split 'images/val' does not exist"):
        inspect_dataset(shapes)


def test_no_labelled_images(shapes: Path) -> None:
    shutil.rmtree(shapes.parent / "labels")
    with pytest.raises(DatasetError, match="no labelled images in the train split"):
        inspect_dataset(shapes)


def test_every_image_broken(shapes: Path) -> None:
    for image in (shapes.parent / "images").rglob("*.png"):
        image.write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="every image is unusable"):
        inspect_dataset(shapes)


def test_no_yaml(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no data.yaml"):
        inspect_dataset(tmp_path)


def test_partial_problems_by_file_and_line(shapes: Path) -> None:
    labels = shapes.parent / "labels" / "train"
    (labels / "img001.txt").write_text(
        "0 0.5 0.5 0.2 0.2\n"
        "0 0.5 0.5 0.2\n"  # 4 columns
        "7 0.5 0.5 0.2 0.2\n"  # class out of range
        "0 0.5 1.5 0.2 0.2\n"  # coordinate > 1
        "0 0.5 0.5 0 0.2\n"  # zero width
        "a 0.5 0.5 0.2 0.2\n"  # not a number
    )
    (shapes.parent / "images" / "train" / "img002.png").write_bytes(b"broken")
    report = inspect_dataset(shapes)
    by_line = {(Path(p.file).name, p.line): p.message for p in report.problems}
    assert "expected 5 columns" in by_line[("img001.txt", 2)]
    assert "class id 7" in by_line[("img001.txt", 3)]
    assert "[0, 1]" in by_line[("img001.txt", 4)]
    assert "positive" in by_line[("img001.txt", 5)]
    assert "non-numeric" in by_line[("img001.txt", 6)]
    assert "cannot be decoded" in by_line[("img002.png", 0)]
    assert report.images_per_split["train"] == 6  # both affected images left out
    assert report.skipped_per_split["train"] == 2
    assert "img001.txt:2" in report.format()


def test_resolved_copy_lives_in_the_run_dir(shapes: Path, tmp_path: Path) -> None:
    report = inspect_dataset(shapes)
    data_yaml = report.build_resolved(tmp_path / "run" / "dataset")
    import yaml

    data = yaml.safe_load(data_yaml.read_text())
    assert Path(data["train"]).is_absolute()
    assert Path(data["train"]).is_dir()
    assert data["names"] == {0: "rect", 1: "circle"}
    labels = sorted((tmp_path / "run" / "dataset" / "labels" / "train").glob("*.txt"))
    assert len(labels) == 8


def test_coco8_and_bccd() -> None:
    coco = inspect_dataset(require(COCO8) / "coco8.yaml")
    assert coco.images_per_split == {"train": 4, "val": 4}
    assert len(coco.names) == 80
    bccd: DetectionReport = inspect_dataset(require(BCCD))
    assert bccd.images_per_split["train"] >= 200
    assert bccd.names == ["RBC", "WBC", "Platelets"]
    assert bccd.median_size == (640, 480)
    assert bccd.instances_per_class["RBC"] > bccd.instances_per_class["WBC"]


def test_nc_that_disagrees_with_names_is_a_warning(tmp_path: Path) -> None:
    data = make_shapes_dataset(tmp_path / "d")
    data.write_text(data.read_text() + "nc: 3\n")
    report = inspect_dataset(data)
    (warning,) = report.warnings
    assert "nc: 3 but names has 2 entries; training uses 2 classes" in warning
    assert warning in report.format()
    assert report.to_dict()["warnings"] == [warning]
    data.write_text(data.read_text().replace("nc: 3", "nc: 2"))
    assert inspect_dataset(data).warnings == []


def test_label_files_without_an_image_are_reported(tmp_path: Path) -> None:
    data = make_shapes_dataset(tmp_path / "d")
    labels = tmp_path / "d" / "labels" / "train"
    (labels / "img999.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (labels / "typo_img001.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    report = inspect_dataset(data)
    (warning,) = report.warnings
    assert warning.startswith("train: 2 label file(s) have no image")
    assert str(labels / "img999.txt") in warning
    assert str(labels / "typo_img001.txt") in warning
    assert report.images_per_split == {"train": 8, "val": 4}  # nothing else changes
