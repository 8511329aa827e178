"""The offline guard and base-model resolution."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from smalltrain.errors import WeightsNotFound
from smalltrain.tasks.detection import offline, resolve_base_model
from tests.support.data import PRETRAINED, require


def test_official_name_not_on_disk_fails_at_once(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFound, match=r"'yolo11n.pt' not found.*local \.pt.*yolo11n\.yaml"):
        resolve_base_model("yolo11n.pt", tmp_path)


def test_local_pt_weights_dir_and_yaml(tmp_path: Path) -> None:
    local = tmp_path / "mine.pt"
    local.write_bytes(b"x")
    assert resolve_base_model(str(local), tmp_path) == str(local.resolve())
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "yolo11n.pt").write_bytes(b"x")
    assert resolve_base_model("yolo11n.pt", tmp_path) == str(tmp_path / "weights" / "yolo11n.pt")
    assert resolve_base_model("yolov8n.yaml", tmp_path) == "yolov8n.yaml"
    with pytest.raises(WeightsNotFound, match="does not exist"):
        resolve_base_model(str(tmp_path / "missing.yaml"), tmp_path)
    assert resolve_base_model(str(require(PRETRAINED))).endswith("yolov8s_fall_detection.pt")


def test_apply_sets_env_fonts_and_settings(home: Path) -> None:
    cfg = offline.apply(home)
    assert os.environ["YOLO_OFFLINE"] == "1"
    assert os.environ["YOLO_AUTOINSTALL"] == "false"
    import ultralytics.utils as uutils

    font_dir = Path(uutils.USER_CONFIG_DIR)
    assert (font_dir / "Arial.ttf").stat().st_size > 100_000
    assert (font_dir / "Arial.Unicode.ttf").is_file()
    assert uutils.ONLINE is False
    for key in ("sync", "clearml", "comet", "dvc", "mlflow", "raytune", "wandb", "tensorboard"):
        assert uutils.SETTINGS[key] is False, key
    assert cfg == home.resolve() / "cache" / "ultralytics"
    from ultralytics.utils.checks import check_font

    assert Path(str(check_font("Arial.ttf"))).is_file()  # found locally: no download attempt
