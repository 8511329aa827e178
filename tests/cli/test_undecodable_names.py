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


def test_a_detection_image_with_a_latin1_name_is_skipped_through_registration_and_the_copy(
    home: Path, tmp_path: Path
) -> None:
    """The whole path a train takes before Ultralytics: register (fingerprint), inspect,
    then the resolved copy the trainer reads. The odd image is named once and left out."""
    from smalltrain.tasks.detect.inspect import inspect_dataset
    from smalltrain.tasks.detect.synth import make_shapes_dataset

    root = tmp_path / "shapes"
    make_shapes_dataset(root)
    first = sorted((root / "images" / "train").glob("*.png"))[0]
    shutil.copyfile(first, os.fsencode(root / "images" / "train") + b"/caf\xe9.png")
    shutil.copyfile(first.with_suffix(".txt").as_posix().replace("/images/", "/labels/"),
                    os.fsencode(root / "labels" / "train") + b"/caf\xe9.txt")  # fmt: skip

    added = CliRunner().invoke(app, ["datasets", "add", "shapes", str(root), "--json"])
    assert added.exit_code == 0, (added.stdout, added.stderr, added.exception)
    report = inspect_dataset(root)
    assert [p.file for p in report.problems] == [str(root / "images" / "train") + "/caf\\xe9.png"]
    resolved = report.build_resolved(tmp_path / "resolved")
    copied = sorted(p.name for p in (resolved.parent / "images" / "train").iterdir())
    assert copied == sorted(p.name for p in (root / "images" / "train").glob("img*.png"))
    json.dumps(report.to_dict())  # no surrogate reaches the report


def test_a_detection_dataset_in_a_folder_named_in_latin1_is_used_whole(tmp_path: Path) -> None:
    """Only names inside the dataset are checked (as for audio): the folder the user keeps it
    in may be named anyhow."""
    from smalltrain.tasks.detect.inspect import inspect_dataset
    from smalltrain.tasks.detect.synth import make_shapes_dataset

    made = make_shapes_dataset(tmp_path / "shapes").parent  # (cv2.imwrite crashes on the name)
    root = Path(os.fsdecode(os.fsencode(tmp_path) + b"/shapes\xe9"))
    os.rename(made, root)
    report = inspect_dataset(root)
    assert report.problems == []
    assert report.num_images == len(list(root.rglob("*.png")))
