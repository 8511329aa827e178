"""The offline guard and base-model resolution."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from smalltrain.engine.fsutil import sha256_file
from smalltrain.errors import CheckpointError, WeightsNotFound
from smalltrain.paths import weights_index
from smalltrain.tasks.detect import offline, resolve_base_model
from tests.support.data import PRETRAINED, require
from tests.support.weights import yolo_pt


def test_official_name_not_on_disk_fails_at_once(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFound, match=r"'yolo11n.pt' not found.*local \.pt.*yolo11n\.yaml"):
        resolve_base_model("yolo11n.pt", tmp_path)


def test_a_yaml_ultralytics_does_not_ship_fails_before_any_job(tmp_path: Path) -> None:
    """A bare .yaml name used to pass planning and fail in the job; a missing .pt's advice
    named a .yaml that did not exist ('fake.pt' -> 'fake.yaml')."""
    for shipped in ("yolo11n.yaml", "yolov8s.yaml", "yolo11.yaml", "rtdetr-l.yaml"):
        assert resolve_base_model(shipped, tmp_path) == shipped
    with pytest.raises(WeightsNotFound, match=r"'nosuch.yaml' is neither a file here nor one "):
        resolve_base_model("nosuch.yaml", tmp_path)
    with pytest.raises(WeightsNotFound, match=r"such as 'yolo11n.yaml'") as raised:
        resolve_base_model("fake.pt", tmp_path)
    assert "fake.yaml" not in str(raised.value)
    with pytest.raises(WeightsNotFound, match=r"such as 'yolov8m.yaml'"):
        resolve_base_model("yolov8m.pt", tmp_path)
    # the form and the CLI plan through the same check: nothing is queued
    from smalltrain.tasks.detect.presets import weights_available

    assert not weights_available("nosuch.yaml")


def test_a_pt_that_is_no_detector_is_refused_before_any_job(tmp_path: Path) -> None:
    """A text saved as .pt used to be queued and fail in Ultralytics ("re-download")."""
    import zipfile

    from smalltrain.errors import WrongModelKind

    fake = tmp_path / "fake.pt"
    fake.write_text("<html>not weights</html>")
    with pytest.raises(CheckpointError, match=r"fake.pt: not a PyTorch checkpoint.*YOLO \.pt"):
        resolve_base_model(str(fake), tmp_path)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(require(PRETRAINED).read_bytes()[:5000])  # a download cut short
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        resolve_base_model(str(cut), tmp_path)
    audio = tmp_path / "vae.pt"
    with zipfile.ZipFile(audio, "w") as z:  # what torch.save writes, as peek reads it
        import pickle

        z.writestr("vae/data.pkl", pickle.dumps({"model_args": {}, "model_state": {}}))
    with pytest.raises(WrongModelKind, match="a smalltrain audio model, not a detector"):
        resolve_base_model(str(audio), tmp_path)
    legacy = tmp_path / "legacy.pt"
    legacy.write_bytes(b"\x80\x02" + b"rest")  # torch's old format: left to the loader
    assert resolve_base_model(str(legacy), tmp_path) == str(legacy.resolve())


def test_local_pt_weights_dir_and_yaml(tmp_path: Path) -> None:
    local = tmp_path / "mine.pt"
    yolo_pt(local)
    assert resolve_base_model(str(local), tmp_path) == str(local.resolve())
    (tmp_path / "weights").mkdir()
    yolo_pt(tmp_path / "weights" / "yolo11n.pt")
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


_MPL_PROBE = """
import sys
from pathlib import Path
home = Path(sys.argv[1])
if sys.argv[2] == "detect":
    from smalltrain.tasks.detect import offline
    offline.apply(home)
else:
    from smalltrain.engine.plots import plot_history
    plot_history({"train/loss": [(0, 1.0), (1, 0.5)]}, home / "m.png", "t", home)
import matplotlib
import matplotlib.font_manager
print(matplotlib.get_configdir())
"""


@pytest.mark.parametrize("user", ["detect", "plots"])
def test_matplotlib_keeps_its_cache_in_the_smalltrain_home(tmp_path: Path, user: str) -> None:
    import subprocess
    import sys

    fake_home, home = tmp_path / "user", tmp_path / "st-home"
    env = {k: v for k, v in os.environ.items() if k not in ("MPLCONFIGDIR", "XDG_CACHE_HOME",
                                                            "XDG_CONFIG_HOME")}  # fmt: skip
    env["HOME"] = str(fake_home)
    proc = subprocess.run(
        [sys.executable, "-c", _MPL_PROBE, str(home), user],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()) == home.resolve() / "cache" / "matplotlib"
    assert any((home / "cache" / "matplotlib").glob("fontlist*.json"))  # the font cache
    assert not (fake_home / ".cache" / "matplotlib").exists()
    assert not (fake_home / ".config" / "matplotlib").exists()


def test_a_registered_file_is_checked_by_sha256_and_a_name_means_the_weights_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    folder = home / "weights"
    folder.mkdir(parents=True)
    registered = folder / "base.pt"
    yolo_pt(registered, "as registered")
    weights_index(home).write_text(json.dumps({"base.pt": {"sha256": sha256_file(registered)}}))
    work = tmp_path / "work"
    work.mkdir()
    yolo_pt(work / "base.pt", "another file of that name in the working folder")
    monkeypatch.chdir(work)
    assert resolve_base_model("base.pt", home) == str(registered)
    assert resolve_base_model(str(registered), home) == str(registered)  # by path: checked too
    yolo_pt(registered, "swapped after it was registered")
    for given in ("base.pt", str(registered)):
        with pytest.raises(CheckpointError, match="changed since it was registered"):
            resolve_base_model(given, home)
