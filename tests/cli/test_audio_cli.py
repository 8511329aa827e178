"""The audio commands through the real CLI: inspect, generate, reconstruct, interpolate.

Training through `smalltrain train` (attached, detached, Ctrl-C, resume) is covered in
test_jobs_cli.py; here the suite's shared model (``trained_audio``, trained once with the Python
API) is used by path and by its registered name.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf
from typer.testing import CliRunner

from smalltrain.cli.main import app
from smalltrain.paths import models_dir
from smalltrain.store import ModelEntry, ModelStore
from smalltrain.tasks.audio.data.synth import make_sound_folder
from smalltrain.tasks.audio.use.generate import load_model
from tests.support.audio import TrainedAudio


def run(*args: str, code: int = 0) -> str:
    """stdout and stderr together (warnings go to stderr)."""
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result.stdout + result.stderr if code == 0 else result.stderr


@pytest.fixture
def trained(trained_audio: TrainedAudio) -> tuple[Path, Path]:
    """The session's shared run (``trained_audio`` in ``tests/conftest.py``): its training
    folder and its run folder."""
    return trained_audio.data, trained_audio.run


def test_inspect_lists_used_and_skipped_files(tmp_path: Path) -> None:
    make_sound_folder(tmp_path, n_files=3, seed=0)
    (tmp_path / "broken.wav").write_bytes(b"RIFF....garbage")
    (tmp_path / "empty.flac").write_bytes(b"")
    out = run("inspect", str(tmp_path))
    assert "files used:     3" in out
    assert "broken.wav" in out
    assert "empty.flac: empty file (0 bytes)" in out
    assert "The auto preset would train with" in out
    assert "preset tiny" in out


def test_inspect_of_a_folder_without_audio_fails_clearly(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_bytes(b"not audio at all")
    err = run("inspect", str(tmp_path), code=1)
    assert str(tmp_path) in err
    assert "WAV, FLAC, OGG, MP3, AIFF" in err
    assert "Traceback" not in err


def test_generate_reconstruct_interpolate_by_path(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    sounds, run_dir = trained
    out = run("generate", str(run_dir), "--n", "3", "--out", str(tmp_path / "gen"), "--seed", "4")
    assert "warning" not in out  # the exported model carries its fitted prior
    ckpt = sorted((run_dir / "checkpoints").glob("*.pt"))[-1]
    out = run("generate", str(ckpt), "--n", "1", "--out", str(tmp_path / "raw"))
    assert "no fitted latent prior" in " ".join(out.split())
    wavs = sorted((tmp_path / "gen").glob("*.wav"))
    assert len(wavs) == 3
    info = sf.info(wavs[0])
    sr = load_model(run_dir).config.sample_rate  # the model's rate, not the input files'
    assert info.samplerate == sr
    assert info.channels == 1
    out = run("generate", str(run_dir), "--n", "2", "--duration", "2.5", "--out",
              str(tmp_path / "long"))  # fmt: skip
    assert "wrote 2 sounds of 2.5 s" in out
    assert "warning" not in out  # the exported model carries its sequence prior
    long_wavs = sorted((tmp_path / "long").glob("*.wav"))
    assert [sf.info(p).frames for p in long_wavs] == [int(2.5 * sr)] * 2
    out = run("generate", str(ckpt), "--duration", "1.5", "--out", str(tmp_path / "raw-long"))
    assert "no sequence prior" in " ".join(out.split())
    err = run("generate", str(run_dir), "--duration", "0", "--out", str(tmp_path / "x"), code=1)
    assert "duration" in err
    source = sorted(sounds.iterdir())[0]
    run("reconstruct", str(run_dir), str(source), "--out", str(tmp_path / "r.wav"))
    original = sf.info(source)
    assert sf.info(tmp_path / "r.wav").duration == pytest.approx(original.duration, abs=0.01)
    sf.write(tmp_path / "silence.wav", [0.0] * 4800, 48000)  # the same check as the web UI's
    err = run("reconstruct", str(run_dir), str(tmp_path / "silence.wav"), code=1)
    assert "silence.wav is silent (peak -inf dBFS" in " ".join(err.split())
    files = sorted(sounds.iterdir())
    run("interpolate", str(run_dir), str(files[0]), str(files[1]), "--steps", "4",
        "--out", str(tmp_path / "interp"))  # fmt: skip
    assert len(list((tmp_path / "interp").glob("interp_*.wav"))) == 4


def test_generate_by_registered_model_name(
    trained: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, run_dir = trained
    home = tmp_path / "home"
    monkeypatch.setenv("SMALLTRAIN_HOME", str(home))
    ModelStore(models_dir(home)).save(ModelEntry(
        dataset="sounds", name="vae1", weights=run_dir / "export" / "best.pt", task="audio",
        config={}, metrics={},
        base_model=None, epochs_completed=1, headline=("best_val_loss", 1.0),
        dataset_snapshot="6 files", dataset_fingerprint="x",
    ))  # fmt: skip
    run("generate", "sounds/vae1", "--n", "1", "--out", str(tmp_path / "a"))
    run("generate", "vae1", "--n", "1", "--out", str(tmp_path / "b"))
    assert (tmp_path / "a" / "sample_000.wav").read_bytes() == (
        tmp_path / "b" / "sample_000.wav"
    ).read_bytes()
    err = run("generate", "nope", "--out", str(tmp_path / "c"), code=1)
    assert "smalltrain models list" in err
