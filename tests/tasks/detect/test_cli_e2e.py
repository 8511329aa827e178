"""Detection through the same commands as audio, as a new user meets them: inspect (which
says there are no weights to fine-tune), datasets add, train, the end summary, weights add, the
model's files, predict and val with every kind of MODEL, and a model of the wrong kind.
Training runs in a real child process through the job manager, with real Ultralytics on a tiny
dataset. (README's own example, tests/cli/test_readme.py, trains from scratch without weights
and then fine-tunes from ``weights add``.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.support.cli import cli, cli_json


def _audio_run(root: Path) -> Path:
    """A tiny trained audio model's run folder (for the wrong-kind checks)."""
    from smalltrain.tasks.audio.data.synth import make_sound_folder
    from smalltrain.tasks.audio.task import AudioTask
    from smalltrain.tasks.audio.training.train import train

    sounds = root / "sounds"
    make_sound_folder(sounds, n_files=4, seed=3)
    task = AudioTask()
    config = task.adaptive_config(
        task.inspect(sounds), "cpu", "tiny", epochs=1, model_width=8, preview_every=0
    )
    train(config, sounds, root / "audio-run")
    return root / "audio-run"


@pytest.mark.slow
def test_detect_end_to_end_through_the_cli(
    shapes: Path, tiny_model: Path, home: Path, tmp_path: Path
) -> None:
    inspected = cli("inspect", str(shapes)).stdout
    assert "note: no pretrained weights on disk" in inspected
    assert "  base_model: " in inspected
    assert "dataset_name" not in inspected  # an unset text field says nothing
    assert cli_json("datasets", "add", "shapes", str(shapes))["kind"] == "detect"

    out = cli("train", "shapes", "--set", f"base_model={tiny_model}", "--set", "epochs=2",
              "--name", "det1").stdout  # fmt: skip
    assert "from scratch" not in out  # the user chose the model: no note
    for part in (
        "best epoch",
        "mAP50-95",
        "run folder",
        "metrics plot",
        "model",
        "active",
        "per class (best.pt on the val split)",
        "(best.pt evaluated again after training)",  # why it may differ from the best epoch
        "next: smalltrain predict shapes/det1",
        "active: the first model of dataset 'shapes'",
    ):
        assert part in out, part  # fmt: skip
    (det,) = cli_json("jobs", "list")
    assert det["status"] == "COMPLETED"
    run_dir = Path(det["run_dir"])
    assert (run_dir / "metrics.png").stat().st_size > 1000
    assert f"the training tool's own log: {run_dir / 'ultralytics.log'}" in (
        cli("jobs", "logs", det["id"]).stdout
    )
    best = run_dir / "export" / "best.pt"
    added = cli_json("weights", "add", str(best), "--name", "tiny.pt")
    assert added["state"] == "ok"
    assert len(added["sha256"]) == 64
    assert [w["name"] for w in cli_json("weights", "list")] == ["tiny.pt"]

    # What the registered model holds, as README says.
    model = cli_json("models", "show", "shapes/det1")
    assert (model["task"], model["headline_metric"]) == ("detect", "best_map50_95")
    folder = Path(model["path"])
    entry = json.loads((folder / "registry_entry.json").read_text())
    for field in ("created", "base_model", "epochs_completed", "best_map50", "dataset_snapshot"):
        assert field in entry, field
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert config["config"]["base_model"] == str(tiny_model)
    assert config["ultralytics"]["imgsz"] == 64  # Ultralytics' resolved arguments
    assert config["ultralytics"]["epochs"] == 2
    metrics = json.loads((folder / "metrics.json").read_text())
    assert [int(r["epoch"]) for r in metrics["history"]] == [0, 1]
    assert "val/mAP50-95" in metrics["history"][0]
    assert metrics["per_class"]
    assert set(metrics["per_class"]) <= {"rect", "circle"}

    # predict and val take a dataset (its active model), a model name, a run folder or a file.
    images = str(shapes.parent / "images" / "val")
    boxes = tmp_path / "boxes"
    cli("predict", "shapes", images, "--out", str(boxes), "--conf", "0.0", "--save-txt")
    names = sorted(p.name for p in (shapes.parent / "images" / "val").iterdir())
    assert sorted(p.name for p in boxes.glob("*.png")) == names  # the images' own names
    labels = sorted((boxes / "labels").glob("*.txt"))
    assert [p.stem for p in labels] == [Path(n).stem for n in names]
    for line in labels[0].read_text().splitlines():
        cls, *coords = line.split()
        assert cls in ("0", "1")
        assert len(coords) == 4
        assert all(0.0 <= float(v) <= 1.0 for v in coords)
    # ... or a file of the weights folder by its name, as base_model takes it
    for ref in ("det1", str(run_dir), str(best), "tiny.pt"):
        records = json.loads(cli("predict", ref, images, "--json").stdout)
        assert len(records) == 4
        assert all(r["annotated"] is None for r in records)  # --json alone writes nothing
    # the results of training (confusion matrix, PR curves, worst images) are kept with it
    assert (folder / "results" / "results.json").is_file()
    assert (folder / "results" / "confusion_matrix.png").is_file()
    val = cli_json("val", "det1")  # on its own dataset: computed again, into its folder
    assert "val/mAP50-95" in val
    assert set(val["per_class"]) <= {"rect", "circle"}
    assert val["folder"] == str(folder / "results")
    assert val["results"]["confusion_matrix"]["labels"] == ["rect", "circle", "background"]
    text = cli("val", "det1").stdout
    assert "pred background" in text
    assert f"results in {folder / 'results'}/" in text
    assert cli_json("val", "shapes/det1", str(shapes))["val/images"] == 4

    # A model of the wrong kind gets a sentence, not a stack of loader errors.
    audio = _audio_run(tmp_path)
    err = cli("predict", str(audio), images, code=1).stderr
    assert f"{audio} is an audio model; predict needs a detection model" in err
    err = cli("generate", "det1", "--out", str(tmp_path / "g"), code=1).stderr
    assert "shapes/det1 is a detection model; generate needs an audio model" in err
    err = cli("evaluate", "shapes", str(tmp_path / "sounds"), code=1).stderr
    assert "is a detection model; evaluate needs an audio model" in err
