"""Detection TrainingConfig: the classic defaults, validation, dict round trip, presets."""

from __future__ import annotations

from pathlib import Path

import pytest

from smalltrain.errors import ConfigError, WeightsNotFound
from smalltrain.tasks.detect import DetectTask, TrainingConfig, continue_config
from smalltrain.tasks.detect.config import FIELD_HELP
from smalltrain.tasks.detect.inspect import inspect_dataset
from tests.support.weights import yolo_pt


def test_seed_defaults() -> None:
    c = TrainingConfig(dataset_name="cells")
    assert (c.base_model, c.epochs, c.batch_size, c.image_size) == ("yolo11n.pt", 100, 16, 640)
    assert (c.patience, c.freeze_layers, c.lr0, c.lrf) == (20, 10, 0.001, 0.01)
    assert (c.model_name, c.max_gpu_memory_percent) == ("", 0.8)
    assert c.optimizer == "AdamW"


def test_image_size_must_be_multiple_of_32() -> None:
    with pytest.raises(ConfigError, match=r"image_size=100: must be a multiple of 32"):
        TrainingConfig(image_size=100)
    with pytest.raises(ConfigError, match=r"image_size=32000: must be a multiple of 32 from 32 to"):
        TrainingConfig(image_size=32000)
    assert TrainingConfig(image_size=4096).image_size == 4096


def test_auto_optimizer_is_resolved_so_lr0_applies() -> None:
    c = TrainingConfig(optimizer="auto")
    assert c.optimizer == "AdamW"
    assert c.ultralytics_args()["optimizer"] == "AdamW"
    assert TrainingConfig(optimizer="sgd").optimizer == "SGD"
    with pytest.raises(ConfigError, match="optimizer='Lion'"):
        TrainingConfig(optimizer="Lion")


@pytest.mark.parametrize(
    ("field", "value"),
    [("epochs", 0), ("lr0", 0.0), ("max_gpu_memory_percent", 1.5), ("batch_size", 0), ("nbs", 0)],
)
def test_invalid_values_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        TrainingConfig(**{field: value})  # type: ignore[arg-type]


def test_dict_round_trip_and_unknown_field() -> None:
    c = TrainingConfig(dataset_name="d", epochs=5, preset="auto")
    assert TrainingConfig.from_dict(c.to_dict()) == c
    assert DetectTask().config_from_dict(c.to_dict()) == c
    with pytest.raises(ConfigError, match="unknown field; did you mean epochs?"):
        TrainingConfig.from_dict({"epoch": 3})


def test_auto_preset_for_small_data(shapes: Path, tmp_path: Path) -> None:
    report = inspect_dataset(shapes)
    weights = tmp_path / "x.pt"
    yolo_pt(weights)
    scratch = DetectTask().adaptive_config(report, "cpu", base_model="yolov8n.yaml")
    assert scratch.nbs == scratch.batch_size  # no accumulation up to nbs=64
    assert scratch.freeze_layers == 0  # never a frozen random backbone
    assert scratch.image_size == 64  # from the images' size
    assert scratch.preset == "auto"
    pretrained = DetectTask().adaptive_config(report, "cpu", base_model=str(weights))
    assert pretrained.freeze_layers == 10  # < 100 images: keep the pretrained backbone
    assert pretrained.epochs <= scratch.epochs
    assert pretrained.patience <= scratch.patience


def test_overrides_win_and_derived_values_follow(shapes: Path) -> None:
    report = inspect_dataset(shapes)
    c = DetectTask().adaptive_config(report, "cpu", epochs=3, batch_size=2, lr0="0.005")
    assert (c.epochs, c.batch_size, c.lr0, c.nbs) == (3, 2, 0.005, 2)
    assert c.warmup_epochs <= 3
    assert c.close_mosaic <= 3
    with pytest.raises(ConfigError, match="preset"):
        DetectTask().adaptive_config(report, "cpu", preset="fast")


def test_ultralytics_and_classic_presets(shapes: Path, home: Path) -> None:
    report = inspect_dataset(shapes)
    # Outside the auto preset, default weights that are not on disk fail at once (no job):
    with pytest.raises(WeightsNotFound, match="yolo11n.pt"):
        DetectTask().adaptive_config(report, "cpu", preset="classic")
    (home / "weights").mkdir()
    yolo_pt(home / "weights" / "yolo11n.pt")  # found by name in the weights folder
    ul = DetectTask().adaptive_config(report, "cpu", preset="ultralytics")
    assert (ul.nbs, ul.epochs, ul.optimizer) == (64, 100, "AdamW")
    assert ul.lr0 == round(0.002 * 5 / (4 + 2), 6)  # what optimizer='auto' would pick, recorded
    classic = DetectTask().adaptive_config(report, "cpu", preset="classic")
    assert classic == TrainingConfig(preset="classic")
    assert (classic.epochs, classic.batch_size, classic.freeze_layers) == (100, 16, 10)
    # the old spelling is still read (job records, scripts) and becomes the plain name
    assert DetectTask().adaptive_config(report, "cpu", preset="seed") == classic
    assert TrainingConfig(preset="seed").preset == "classic"
    assert "seed" not in " ".join(FIELD_HELP.values()).replace("random seed", "")


def test_auto_preset_without_weights_trains_from_scratch_and_says_so(
    shapes: Path, home: Path
) -> None:
    report = inspect_dataset(shapes)
    task = DetectTask()
    config = task.adaptive_config(report, "cpu")
    assert config.base_model == "yolo11n.yaml"  # the same architecture, from scratch
    assert config.freeze_layers == 0
    assert config.nbs == config.batch_size  # the small-data recipe
    with_weights = task.adaptive_config(report, "cpu", base_model="yolov8n.yaml")
    assert config.epochs == with_weights.epochs  # the from-scratch number of epochs
    (note,) = task.config_notes(config, {})
    assert "no pretrained weights" in note
    assert "--set base_model=PATH.pt" in note
    assert "smalltrain weights add FILE" in note
    assert task.config_notes(with_weights, {"base_model": "yolov8n.yaml"}) == []
    (home / "weights").mkdir()
    yolo_pt(home / "weights" / "yolo11n.pt")
    assert task.adaptive_config(report, "cpu").base_model == "yolo11n.pt"  # fine-tunes it


def test_continue_config(tmp_path: Path) -> None:
    weights = tmp_path / "best.pt"
    weights.write_bytes(b"x")
    c = continue_config(TrainingConfig(epochs=50, patience=20), weights, 10)
    assert (c.epochs, c.base_model, c.patience) == (10, str(weights.resolve()), 10)
    with pytest.raises(ConfigError, match="extra_epochs"):
        continue_config(TrainingConfig(), weights, 0)
