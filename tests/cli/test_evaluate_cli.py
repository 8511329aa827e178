"""``smalltrain evaluate`` through the CLI: table, --json, bad folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smalltrain.cli.main import app
from tests.support.audio import TrainedAudio, write_tones


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMALLTRAIN_HOME", str(tmp_path / "home"))


@pytest.fixture
def run_dir(trained_audio: TrainedAudio) -> Path:
    """The session's shared run (``trained_audio`` in ``tests/conftest.py``)."""
    return trained_audio.run


@pytest.fixture
def folder_with_bad(tmp_path: Path) -> Path:
    folder = write_tones(tmp_path / "held", 2, seed=1)
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00 definitely not audio" * 8)
    (folder / "empty.ogg").write_bytes(b"")
    return folder


def test_json_is_one_object_with_every_field(run_dir: Path, folder_with_bad: Path) -> None:
    args = ["evaluate", str(run_dir), str(folder_with_bad), "--json", "--generate", "3"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # the whole of stdout is one JSON document
    assert set(data["model"]) >= {"sc", "mel_l1_db", "latent_floats"}
    assert set(data["baseline_pca"]) >= {"k", "sc", "mel_l1_db"}
    assert isinstance(data["chunks"], int)
    assert data["chunks"] >= 2
    assert all(set(f) >= {"path", "sc", "mel_l1_db"} for f in data["files"])
    assert set(data["generation"]) >= {"n", "frechet_model", "frechet_pca", "model", "baseline_pca"}
    assert set(data["generation"]["model"]) >= {"precision", "recall", "memorisation_ratio"}
    assert data["generation"]["n"] == 3
    assert set(data["waveform"]) >= {"model", "baseline_pca", "inversion"}
    assert set(data["waveform"]["inversion"]) == {"sc", "log_mag_db"}
    assert sorted(s["path"] for s in data["skipped"]) == ["corrupt.wav", "empty.ogg"]


def test_table_names_skipped_files(run_dir: Path, folder_with_bad: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", str(run_dir), str(folder_with_bad)])
    assert result.exit_code == 0, result.output
    assert "PCA-" in result.stdout
    out = " ".join(result.stdout.split())
    assert "inversion" in out  # the ceiling row beside model and PCA
    assert "for the inversion alone (the ceiling)" in out
    assert "wave SC" in out
    assert "skipped 2 file(s)" in result.stdout
    assert "corrupt.wav" in result.stdout
    assert "empty.ogg" in result.stdout


def test_only_bad_files_fail_with_one_clear_line(run_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x00 definitely not audio" * 8)
    (tmp_path / "notes.flac").write_text("not a flac\n")
    result = CliRunner().invoke(app, ["evaluate", str(run_dir), str(tmp_path), "--json"])
    assert result.exit_code != 0
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "no usable audio" in lines[0]
    assert "corrupt.wav" in lines[0]


def test_unknown_model_is_a_clear_error(folder_with_bad: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", "no-such-model-xyz", str(folder_with_bad)])
    assert result.exit_code == 1
    assert "not a file, a folder, a registered model" in result.stderr
