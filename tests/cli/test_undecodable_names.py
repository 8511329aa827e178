"""A file name that is not valid UTF-8 in an audio folder (``caf\\xe9.wav``, Latin-1 bytes) is
skipped everywhere inspection skips it, the dataset's fingerprint included: ``smalltrain train``
on that folder runs to COMPLETED through the real CLI."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smalltrain.cli.main import app
from smalltrain.store.datasets import quick_fingerprint
from tests.support.audio import cli_sets, make_audio_dataset


def _with_latin1_name(folder: Path) -> Path:
    make_audio_dataset(folder)
    first = sorted(folder.glob("*.wav"))[0]
    odd = os.fsencode(folder) + b"/caf\xe9.wav"
    shutil.copyfile(first, odd)
    assert os.path.exists(odd)
    return folder


def test_the_quick_fingerprint_skips_a_name_that_is_not_utf8(tmp_path: Path) -> None:
    folder = _with_latin1_name(tmp_path / "sounds")
    before = quick_fingerprint(folder)
    os.remove(os.fsencode(folder) + b"/caf\xe9.wav")
    assert quick_fingerprint(folder) == before  # it never counted


@pytest.mark.slow
def test_train_on_a_folder_with_a_latin1_name_completes(home: Path, tmp_path: Path) -> None:
    folder = _with_latin1_name(tmp_path / "sounds")
    args = ["train", str(folder), "--preset", "tiny", *cli_sets(), "--set", "epochs=1",
            "--executor", "inline", "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    job = json.loads(result.stdout)["job"]
    assert job["status"] == "COMPLETED"
    assert "surrogates" not in result.stderr
