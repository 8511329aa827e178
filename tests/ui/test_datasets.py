"""Datasets through the UI's backend: uploads (audio files, a zipped YOLO dataset) land in the
home and are inspected in a child process; bad zips are refused whole; remove deletes only what
was uploaded."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from smalltrain import paths
from smalltrain.errors import DatasetError, DatasetExists
from smalltrain.store import DatasetStore, JobStore
from smalltrain.ui.child.pool import ChildPool
from smalltrain.ui.env import UIPaths
from smalltrain.ui.viewmodels.datasets import DatasetsUI, safe_extract


@pytest.fixture(scope="module")
def pool() -> Iterator[ChildPool]:
    pool = ChildPool(max_workers=1)
    yield pool
    pool.close()


@pytest.fixture
def ui(tmp_path: Path, pool: ChildPool) -> Iterator[DatasetsUI]:
    home = tmp_path / "home"
    jobs = JobStore(paths.db_path(home))
    yield DatasetsUI(DatasetStore(jobs), UIPaths(home).make(), pool)
    jobs.close()


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize("evil", ["../escape.txt", "/abs/escape.txt", "a/../../escape.txt"])
def test_unsafe_zips_are_refused_whole(tmp_path: Path, evil: str) -> None:
    archive = _zip(tmp_path / "x.zip", {"ok.txt": b"1", evil: b"2"})
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(DatasetError, match="unsafe entry"):
        safe_extract(archive, dest)
    assert not (tmp_path / "escape.txt").exists()


def test_a_zipped_yolo_dataset_is_unpacked_and_registered(ui: DatasetsUI, tmp_path: Path) -> None:
    from smalltrain.tasks.detect.synth import make_shapes_dataset

    source = make_shapes_dataset(tmp_path / "src" / "cells").parent
    members = {
        f"cells/{p.relative_to(source)}": p.read_bytes() for p in source.rglob("*") if p.is_file()
    }
    members["__MACOSX/._junk"] = b"x"
    archive = _zip(tmp_path / "cells.zip", members)
    result = ui.upload("cells", [archive])
    record = result["record"]
    assert record["kind"] == "detect"
    assert record["snapshot"] == "12 images, 2 classes"
    assert Path(record["path"]).is_relative_to(ui.ui.datasets / "cells")
    assert not any("__MACOSX" in str(p) for p in (ui.ui.datasets / "cells").rglob("*"))
    assert result["report"]["instances_per_class"]
    with pytest.raises(DatasetExists, match="already taken"):
        ui.upload("cells", [archive])
    ui.remove("cells")
    assert not (ui.ui.datasets / "cells").exists()


def test_uploaded_sounds_are_inspected_and_bad_files_reported(
    ui: DatasetsUI, tmp_path: Path
) -> None:
    from smalltrain.tasks.audio.data.synth import make_sound_folder

    files = make_sound_folder(tmp_path / "src", n_files=4, seed=3)
    broken = tmp_path / "src" / "broken.wav"
    broken.write_bytes(b"RIFF not really a wav")
    result = ui.upload("hits", [*files, broken, tmp_path / "src" / "notes.txt"])
    report = result["report"]
    assert len(report["files"]) == 4
    assert [s["path"] for s in report["skipped"]] == ["broken.wav"]
    assert ui.report("hits")["skipped"] == report["skipped"]  # cached with the folder's fingerprint


def test_a_failed_upload_leaves_nothing(ui: DatasetsUI, tmp_path: Path) -> None:
    archive = _zip(tmp_path / "empty.zip", {"readme.txt": b"no data here"})
    with pytest.raises(DatasetError):
        ui.upload("nothing", [archive])
    assert not (ui.ui.datasets / "nothing").exists()
    assert ui.store.job_store.get_dataset("nothing") is None
    assert not [p for p in ui.ui.datasets.iterdir() if p.name.startswith(".upload")]


def test_removing_a_registered_path_keeps_the_files(ui: DatasetsUI, tmp_path: Path) -> None:
    from smalltrain.tasks.audio.data.synth import make_sound_folder

    folder = tmp_path / "mine"
    make_sound_folder(folder, n_files=3, seed=4)
    ui.register("mine", folder)
    ui.remove("mine")
    assert len(list(folder.iterdir())) == 3
