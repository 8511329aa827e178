"""Registering datasets (the service inspects, the store keeps) with the real audio and detection
tasks on data made in tmp_path."""

from __future__ import annotations

import math
import os
import struct
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from smalltrain.errors import DatasetError, DatasetNotFound, InvalidName
from smalltrain.service.datasets import register_dataset
from smalltrain.store import DatasetRecord, DatasetStore, JobStore, quick_fingerprint


@pytest.fixture
def datasets(tmp_path: Path) -> Iterator[DatasetStore]:
    with JobStore(tmp_path / "smalltrain.db") as jobs:
        yield DatasetStore(jobs, cache_root=tmp_path / "cache")


def _write_wav(path: Path, seconds: float, rate: int = 16000, freq: float = 440.0) -> None:
    n = int(seconds * rate)
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / rate))) for i in range(n)
    )
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)


@pytest.fixture
def audio_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "sounds"
    folder.mkdir()
    for i, seconds in enumerate((1.0, 0.5, 1.5)):
        _write_wav(folder / f"s{i}.wav", seconds, freq=220.0 * (i + 1))
    (folder / "notes.txt").write_text("not audio")
    return folder


@pytest.fixture
def yolo_dir(tmp_path: Path) -> Path:
    import cv2
    import numpy as np

    root = tmp_path / "yolo"
    for split, count in (("train", 3), ("val", 2)):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(count):
            image = np.full((32, 48, 3), 40 * i, dtype=np.uint8)
            cv2.imwrite(str(root / "images" / split / f"{i}.png"), image)
            label = root / "labels" / split / f"{i}.txt"
            label.write_text("0 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n")
    (root / "data.yaml").write_text(
        "path: .\ntrain: images/train\nval: images/val\nnames: [cat, dog]\n"
    )
    return root


def test_register_audio_records_summary_snapshot_and_fingerprints(
    datasets: DatasetStore, audio_dir: Path
) -> None:
    rec = register_dataset(datasets, "sounds", audio_dir)
    assert rec.kind == "audio"
    assert rec.path == str(audio_dir.resolve())
    assert rec.snapshot == "3 files, 3.0 s"
    assert rec.summary["files"] == 3
    assert rec.summary["duration_s"] == pytest.approx(3.0)
    assert rec.summary["sample_rates"] == {"16000": 3}
    assert rec.fingerprint
    assert rec.quick_fingerprint == quick_fingerprint(audio_dir)
    assert datasets.get("sounds") == rec
    assert [r.name for r in datasets.list()] == ["sounds"]
    with pytest.raises(DatasetError, match="detection datasets"):
        datasets.get_data_yaml_path("sounds")


def test_changed_since_notices_edits_but_not_caches(
    datasets: DatasetStore, audio_dir: Path
) -> None:
    register_dataset(datasets, "sounds", audio_dir)
    assert not datasets.changed_since("sounds")
    (audio_dir / "labels.cache").write_bytes(b"tool cache")
    (audio_dir / ".DS_Store").write_bytes(b"finder")
    assert not datasets.changed_since("sounds")
    _write_wav(audio_dir / "s3.wav", 0.25)
    assert datasets.changed_since("sounds")


def test_remove_forgets_the_name_but_keeps_the_files(
    datasets: DatasetStore, audio_dir: Path
) -> None:
    register_dataset(datasets, "sounds", audio_dir)
    removed = datasets.remove("sounds")
    assert removed.name == "sounds"
    kept = sorted(p.name for p in audio_dir.iterdir())
    assert kept == ["notes.txt", "s0.wav", "s1.wav", "s2.wav"]
    with pytest.raises(DatasetNotFound, match="smalltrain datasets add sounds PATH"):
        datasets.get("sounds")
    with pytest.raises(DatasetNotFound):
        datasets.remove("sounds")


def test_register_detection_and_data_yaml(datasets: DatasetStore, yolo_dir: Path) -> None:
    rec = register_dataset(datasets, "pets", yolo_dir)
    assert rec.kind == "detect"
    assert rec.snapshot == "5 images, 2 classes"
    assert (rec.summary["images"], rec.summary["classes"], rec.summary["instances"]) == (5, 2, 10)
    assert rec.summary["names"] == ["cat", "dog"]
    assert datasets.get_data_yaml_path("pets") == yolo_dir.resolve() / "data.yaml"
    (yolo_dir / "data.yaml").unlink()
    with pytest.raises(DatasetError, match="no data.yaml"):
        datasets.get_data_yaml_path("pets")


def test_register_refuses_bad_names_and_paths(datasets: DatasetStore, tmp_path: Path) -> None:
    with pytest.raises(InvalidName, match="dataset name"):
        register_dataset(datasets, "../up", tmp_path)
    with pytest.raises(DatasetError, match="no such file"):
        register_dataset(datasets, "gone", tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="not a dataset"):
        register_dataset(datasets, "empty", empty)
    assert datasets.list() == []


def test_get_unknown_dataset_gives_a_hint(datasets: DatasetStore) -> None:
    datasets.job_store.upsert_dataset(DatasetRecord("a", "/a", "audio"))
    with pytest.raises(DatasetNotFound, match=r"registered: a\). Register it with"):
        datasets.get("b")


def test_quick_fingerprint_tracks_sizes_and_mtimes(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.wav").write_bytes(b"1234")
    (folder / "data.yaml").write_text("names: [x]\n")
    first = quick_fingerprint(folder)
    assert first == quick_fingerprint(folder / "data.yaml")  # a yaml stands for its folder
    os.utime(folder / "sub" / "a.wav", ns=(1, 1))
    second = quick_fingerprint(folder)
    assert second != first
    (folder / "sub" / "a.wav").write_bytes(b"12345")
    assert quick_fingerprint(folder) != second
    assert quick_fingerprint(tmp_path / "nothing") == "missing"
