"""Detection through the same commands as audio: datasets add, train (a real child process via
the job manager), jobs, models, predict with the dataset's active model, val."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from smalltrain.cli.main import app


def cli(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


def test_detect_end_to_end_through_the_cli(
    shapes: Path, tiny_model: Path, home: Path, tmp_path: Path
) -> None:
    added = json.loads(cli("datasets", "add", "shapes", str(shapes), "--json"))
    assert added["kind"] == "detect"
    # no --device: the manager passes "auto", which must become this machine's device
    cli("train", "shapes", "--set", f"base_model={tiny_model}", "--set", "epochs=2",
        "--set", "image_size=64", "--model-name", "det1")  # fmt: skip
    (job,) = json.loads(cli("jobs", "list", "--json"))
    assert job["status"] == "COMPLETED"
    (model,) = json.loads(cli("models", "list", "shapes", "--json"))
    assert model["name"] == "det1"
    assert model["task"] == "detect"
    assert model["active"]
    assert model["headline_metric"] == "best_map50"
    model_dir = Path(model["path"])
    registry = json.loads((model_dir.parent.parent / "registry.json").read_text())
    assert registry["active"] == "det1"
    entry = registry["models"]["det1"]
    for field in ("created", "base_model", "epochs_completed", "best_map50", "dataset_snapshot"):
        assert field in entry, field
    assert entry["dataset_snapshot"] == "12 images, 2 classes"
    assert (model_dir / "weights" / "best.pt").is_file()
    assert (model_dir / "config.yaml").is_file()
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics
    images = shapes.parent / "images" / "val"
    out = tmp_path / "boxes"
    cli("predict", "--dataset", "shapes", str(images), "--out", str(out), "--conf", "0.0")
    assert (out / "predictions.json").is_file()
    val = json.loads(cli("val", "shapes/det1", "--data", str(shapes), "--json"))
    assert "val/mAP50" in val
