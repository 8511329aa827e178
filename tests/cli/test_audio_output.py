"""What a person reads after training audio, through the real CLI: the train summary (best
epoch, val/sc beside PCA, run folder, plot, model, active, next), pure JSON from every
reporting command, the material line once, interpolate's note on the first second, near-silent
samples, CPU measured over an interval, config show, and weights list noticing a change.

One tiny audio job is trained once for the module, attached, in a real child process.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from tests.support import audio as audiojob
from tests.support.cli import cli


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("audio-output")
    sounds = audiojob.make_audio_dataset(root / "sounds")
    home = root / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SMALLTRAIN_HOME", str(home))
        text = cli("train", str(sounds), "--preset", "tiny", *audiojob.cli_sets(),
                   "--set", "epochs=2", "--model-name", "vae").stdout  # fmt: skip
        data = json.loads(cli("jobs", "list", "--json").stdout)[0]
    return {"home": home, "sounds": sounds, "text": text, "job": data}


@pytest.fixture
def home(trained: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SMALLTRAIN_HOME", str(trained["home"]))
    return Path(trained["home"])


def test_train_ends_with_a_summary(trained: dict[str, Any], home: Path) -> None:
    text, job = trained["text"], trained["job"]
    assert job["status"] == "COMPLETED"
    assert "best epoch" in text
    assert "val/sc" in text
    assert "(PCA " in text  # the headline beside its baseline
    assert f"run folder  {job['run_dir']}" in text
    assert f"metrics plot  {job['run_dir']}/metrics.png" in text
    assert (Path(job["run_dir"]) / "metrics.png").is_file()
    assert "model  sounds/vae" in text
    assert "active: the first model of dataset 'sounds'" in text
    assert "next: smalltrain generate sounds/vae -n 8 --out generated" in text
    assert "smalltrain evaluate sounds/vae HELD_OUT_FOLDER" in text
    (model,) = json.loads(cli("models", "list", "--json").stdout)
    assert model["headline_metric"] == "best_val_sc"  # what picks the best epoch
    assert model["headline_mode"] == "min"


def test_reporting_commands_print_pure_json(
    trained: dict[str, Any], home: Path, tmp_path: Path
) -> None:
    sounds = sorted(Path(trained["sounds"]).glob("*.wav"))
    job_id = trained["job"]["id"]
    runs = [
        ["generate", "sounds", "-n", "2", "--out", str(tmp_path / "g")],
        ["reconstruct", "vae", str(sounds[0]), "--out", str(tmp_path / "r.wav")],
        ["interpolate", "sounds/vae", str(sounds[0]), str(sounds[1]), "--out", str(tmp_path / "i")],
        ["models", "activate", "vae"],
        ["jobs", "wait", job_id],
        ["jobs", "show", job_id],
        ["datasets", "list"],
        ["config", "show", "audio"],
        ["weights", "list"],
        ["resources", "--interval", "0.05"],
    ]
    printed = [json.loads(cli(*args, "--json").stdout) for args in runs]  # one document each
    generated, waited = printed[0], printed[4]
    assert len(generated["files"]) == 2
    assert "warnings" in generated
    assert waited["summary"]["model"] == "sounds/vae"
    cancel = cli("jobs", "cancel", job_id, "--json", code=1)  # it already ended: one error line
    assert cancel.stdout == ""
    assert cancel.stderr.startswith("error:")


def test_inspect_prints_the_material_line_once(trained: dict[str, Any], home: Path) -> None:
    out = cli("inspect", str(trained["sounds"])).stdout
    assert out.count("material:") == 1


def test_interpolate_says_it_uses_the_first_chunk(
    trained: dict[str, Any], home: Path, tmp_path: Path
) -> None:
    long = tmp_path / "long.wav"
    t = np.arange(48000 * 3) / 48000
    sf.write(long, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 48000)
    short = sorted(Path(trained["sounds"]).glob("*.wav"))[0]
    out = cli("interpolate", "vae", str(long), str(short), "--steps", "2",
              "--out", str(tmp_path / "i")).stdout  # fmt: skip
    assert "interpolate uses the first 1 s of each file" in out
    assert "long.wav is 3.0 s" in out


def test_an_out_of_the_wrong_kind_is_named_and_outputs_get_the_usual_mode(
    trained: dict[str, Any], home: Path, tmp_path: Path
) -> None:
    """A file where a folder goes (and the reverse) is refused before anything runs (it was a
    FileExistsError / IsADirectoryError traceback, naming a temporary file); the sounds
    written get the mode open() gives (they were 0600: mkstemp's)."""
    import os
    import stat

    taken = tmp_path / "clap.wav"
    taken.write_bytes(b"mine")
    refused = cli("generate", "vae", "-n", "1", "--out", str(taken), code=2)
    assert "is a file" in refused.stderr
    assert taken.read_bytes() == b"mine"
    folder = tmp_path / "hits"
    folder.mkdir()
    short = sorted(Path(trained["sounds"]).glob("*.wav"))[0]
    refused = cli("reconstruct", "vae", str(short), "--out", str(folder), code=2)
    assert "is a directory" in refused.stderr
    assert "Traceback" not in refused.stderr
    cli("interpolate", "vae", str(short), str(short), "--steps", "2", "--out", str(taken), code=2)
    old = os.umask(0o022)
    try:
        cli("generate", "vae", "-n", "1", "--out", str(tmp_path / "new"))
        cli("reconstruct", "vae", str(short), "--out", str(tmp_path / "r.wav"))
    finally:
        os.umask(old)
    for written in [*(tmp_path / "new").glob("*.wav"), tmp_path / "r.wav"]:
        assert stat.S_IMODE(written.stat().st_mode) == 0o644, written


def test_near_silent_samples_are_named(tmp_path: Path) -> None:
    from smalltrain.cli.audio import silence_warning

    loud, quiet = tmp_path / "sample_000.wav", tmp_path / "sample_001.wav"
    sf.write(loud, np.full(4800, 0.5, np.float32), 48000)
    sf.write(quiet, np.full(4800, 10 ** (-61 / 20), np.float32), 48000)  # -61 dBFS
    warning = silence_warning([loud, quiet])
    assert warning is not None
    assert "1 of 2 samples are near-silent (peak down to -61 dBFS" in warning
    assert "sample_001.wav" in warning
    assert "sample_000.wav" not in warning
    assert silence_warning([loud]) is None


def test_resources_measures_cpu_over_an_interval(home: Path) -> None:
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        status = json.loads(cli("resources", "--interval", "0.5", "--json").stdout)
    finally:
        for proc in burners:
            proc.kill()
            proc.wait()
    assert status["cpu_interval_s"] == 0.5
    assert status["cpu_percent"] >= 40  # two busy processes on this machine, measured


def test_config_show_lists_every_field(trained: dict[str, Any], home: Path) -> None:
    from smalltrain.tasks.audio.config import TrainingConfig
    from smalltrain.tasks.detect.config import TrainingConfig as DetectConfig

    shown = json.loads(cli("config", "show", "audio", str(trained["sounds"]), "--json").stdout)
    rows = shown["tasks"]["audio"]
    assert [r["field"] for r in rows] == list(TrainingConfig().to_dict())
    assert all(r["description"] for r in rows)  # every field says what it does
    epochs = next(r for r in rows if r["field"] == "epochs")
    assert epochs["default"] == 50
    assert epochs["auto"] != epochs["default"]  # the auto preset's value for this dataset
    both = json.loads(cli("config", "show", "--json").stdout)["tasks"]
    assert set(both) >= {"audio", "detect"}
    assert [r["field"] for r in both["detect"]] == list(DetectConfig().to_dict())
    assert all(r["description"] for r in both["detect"])
    text = cli("config", "show", "detect").stdout
    assert "base_model" in text
    assert "yolo11n.pt" in text


def test_weights_list_notices_a_changed_file(home: Path, tmp_path: Path) -> None:
    from tests.support.data import PRETRAINED

    source = tmp_path / "w.pt"
    if PRETRAINED.is_file():
        shutil.copyfile(PRETRAINED, source)
    else:  # a real detection checkpoint is needed: train the tiniest one
        pytest.skip("no detection checkpoint at hand (shared data absent)")
    cli("weights", "add", str(source), "--name", "w.pt")
    (entry,) = json.loads(cli("weights", "list", "--json").stdout)
    assert entry["state"] == "ok"
    with open(Path(entry["path"]), "ab") as f:
        f.write(b"\0")
    (entry,) = json.loads(cli("weights", "list", "--json").stdout)
    assert entry["state"] == "changed"
    assert "changed since it was added" in cli("weights", "list").stderr
    err = cli("weights", "add", str(sorted(tmp_path.glob("*.pt"))[0]), "--name", "w.pt", code=1)
    assert "exist already" in err.stderr
    audio_model = next(Path(home).glob("models/*/models/*/weights/best.pt"))
    err = cli("weights", "add", str(audio_model), "--name", "a.pt", code=1).stderr
    assert "an audio model" in err
