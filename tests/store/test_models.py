"""ModelStore: the seed's registry layout, name safety, corruption and concurrent writers."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from smalltrain.engine.fsutil import sha256_file
from smalltrain.errors import InvalidName, ModelExists, ModelNotFound, RegistryCorrupt
from smalltrain.store import ModelEntry, ModelInfo, ModelStore


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "models")


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    path = tmp_path / "run" / "best.pt"
    path.parent.mkdir()
    path.write_bytes(b"fake weights " * 100)
    return path


def _save(store: ModelStore, weights: Path, name: str, **kw: Any) -> ModelInfo:
    args: dict[str, Any] = {
        "task": "detect",
        "config": {"epochs": 3, "data": Path("/d/data.yaml"), "imgsz": (640, 640)},
        "metrics": {"val/mAP50": 0.82, "val/loss": math.nan},
        "base_model": "yolo11n.pt",
        "epochs_completed": 3,
        "headline": ("best_map50", 0.82),
        "dataset_snapshot": "200 images, 3 classes",
        "dataset_fingerprint": "abc123",
        "job_id": "0123456789ab",
        "versions": {"smalltrain": "0.1.0"},
    }
    overwrite = bool(kw.pop("overwrite", False))
    entry = ModelEntry(dataset="birds", name=name, weights=weights, **{**args, **kw})
    return store.save(entry, overwrite=overwrite)


def test_save_writes_the_seed_layout_and_registry(store: ModelStore, weights: Path) -> None:
    info = _save(store, weights, "detector_v1")
    folder = store.root / "birds" / "models" / "detector_v1"
    assert info.path == folder
    assert info.weights == folder / "weights" / "best.pt"
    assert info.weights.read_bytes() == weights.read_bytes()
    assert yaml.safe_load((folder / "config.yaml").read_text()) == {
        "epochs": 3,
        "data": "/d/data.yaml",
        "imgsz": [640, 640],
    }
    assert json.loads((folder / "metrics.json").read_text()) == {
        "val/mAP50": 0.82,
        "val/loss": "nan",
    }
    registry = json.loads((store.root / "birds" / "registry.json").read_text())
    entry = registry["models"]["detector_v1"]
    assert registry["active"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", entry["created"])
    assert entry["best_map50"] == 0.82
    assert entry["base_model"] == "yolo11n.pt"
    assert entry["epochs_completed"] == 3
    assert entry["dataset_snapshot"] == "200 images, 3 classes"
    assert entry["weights_sha256"] == sha256_file(weights)
    assert entry["weights_size"] == weights.stat().st_size
    assert (entry["task"], entry["job_id"], entry["dataset_fingerprint"]) == (
        "detect",
        "0123456789ab",
        "abc123",
    )
    assert entry["versions"] == {"smalltrain": "0.1.0"}
    assert [p.name for p in (store.root / "birds" / "models").iterdir()] == ["detector_v1"]
    assert info.to_dict()["headline_value"] == 0.82


def test_get_list_active_and_delete(store: ModelStore, weights: Path) -> None:
    _save(store, weights, "a")
    _save(store, weights, "b", headline=("best_map50", None))
    assert [m.name for m in store.list("birds")] == ["a", "b"]
    assert store.get("birds", "b").headline_value is None
    assert store.get_active("birds") is None
    store.set_active("birds", "b")
    active = store.get_active("birds")
    assert active is not None
    assert active.name == "b"
    assert active.active
    assert [m.active for m in store.list()] == [False, True]
    assert store.weights_path("birds", "a") == store.root / "birds/models/a/weights/best.pt"

    assert store.delete("birds", "b")
    assert store.get_active("birds") is None
    assert not (store.root / "birds" / "models" / "b").exists()
    assert not store.delete("birds", "b")
    with pytest.raises(ModelNotFound, match="models: a"):
        store.get("birds", "b")
    with pytest.raises(ModelNotFound):
        store.set_active("birds", "b")
    store.set_active("birds", "a")
    store.set_active("birds", None)
    assert store.get_active("birds") is None


def test_existing_name_is_refused_unless_overwrite(store: ModelStore, weights: Path) -> None:
    _save(store, weights, "m")
    store.set_active("birds", "m")
    with pytest.raises(ModelExists, match="overwrite=True"):
        _save(store, weights, "m")
    weights.write_bytes(b"better weights")
    info = _save(store, weights, "m", overwrite=True, epochs_completed=9)
    assert info.active
    assert store.get("birds", "m").epochs_completed == 9
    assert info.weights.read_bytes() == b"better weights"
    assert sorted(p.name for p in (store.root / "birds" / "models").iterdir()) == ["m"]


def test_unregistered_folder_is_not_overwritten_silently(store: ModelStore, weights: Path) -> None:
    orphan = store.root / "birds" / "models" / "lost"
    orphan.mkdir(parents=True)
    with pytest.raises(ModelExists, match="not in birds/registry.json"):
        _save(store, weights, "lost")
    assert orphan.is_dir()


def test_extra_files_are_copied(store: ModelStore, weights: Path, tmp_path: Path) -> None:
    previews = tmp_path / "previews"
    previews.mkdir()
    (previews / "epoch1.wav").write_bytes(b"RIFF")
    info = _save(store, weights, "m", extra_files={"previews": previews})
    assert (info.path / "previews" / "epoch1.wav").read_bytes() == b"RIFF"


BAD_NAMES = ["../x", "a/b", "a\\b", "", "\x00", "a\nb", "x" * 65, ".hidden", "..", "a..b"]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_unsafe_names_are_refused(store: ModelStore, weights: Path, bad: str) -> None:
    with pytest.raises(InvalidName, match=r"must"):
        _save(store, weights, bad)
    with pytest.raises(InvalidName, match=r"dataset name"):
        store.save(ModelEntry(
            dataset=bad,
            name="ok",
            weights=weights,
            task="audio",
            config={},
            metrics={},
            base_model=None,
            epochs_completed=1,
            headline=("best_val_loss", 0.1),
            dataset_snapshot="",
            dataset_fingerprint="",
        ))  # fmt: skip
    for call in (store.get, store.delete, store.set_active, store.weights_path):
        with pytest.raises(InvalidName):
            call("birds", bad)
    assert not store.root.exists() or list(store.root.rglob("*")) == []


def test_name_rules_are_named() -> None:
    store = ModelStore(Path("/nonexistent"))
    with pytest.raises(InvalidName, match="at most 64 characters"):
        store.model_dir("d", "x" * 65)
    with pytest.raises(InvalidName, match="path separators"):
        store.model_dir("d", "../x")
    with pytest.raises(InvalidName, match="empty"):
        store.model_dir("d", "")
    with pytest.raises(InvalidName, match="control characters"):
        store.model_dir("d", "\x00")
    with pytest.raises(InvalidName, match="start with a dot"):
        store.model_dir("d", ".hidden")
    assert store.model_dir("d", "x" * 64).name == "x" * 64


def test_corrupted_registry_is_reported_and_models_stay(store: ModelStore, weights: Path) -> None:
    _save(store, weights, "m")
    store.save(ModelEntry(dataset="other", name="n", weights=weights, task="audio", config={},
                          metrics={}, base_model=None, epochs_completed=1,
                          headline=("best_val_loss", 0.1)))  # fmt: skip
    registry = store.root / "birds" / "registry.json"
    registry.write_text('{"active": null, "models": {')
    for call in (lambda: store.list("birds"), lambda: store.get("birds", "m")):
        with pytest.raises(RegistryCorrupt) as info:
            call()
        message = str(info.value)
        assert str(registry) in message
        assert "not valid JSON" in message
        assert "models are still in" in message
    with pytest.raises(RegistryCorrupt):
        _save(store, weights, "m2")
    with pytest.raises(RegistryCorrupt):
        store.set_active("birds", "m")
    assert registry.read_text() == '{"active": null, "models": {'
    assert (store.root / "birds" / "models" / "m" / "weights" / "best.pt").is_file()
    assert not (store.root / "birds" / "models" / "m2").exists()
    assert [m.name for m in store.list("other")] == ["n"]
    assert [m.name for m in store.list()] == ["n"]  # the broken one is skipped
    registry.write_text("[]")
    with pytest.raises(RegistryCorrupt, match="not a model registry"):
        store.list("birds")


def test_rebuild_registry_from_the_model_folders(store: ModelStore, weights: Path) -> None:
    _save(store, weights, "a")
    _save(store, weights, "b")
    store.set_active("birds", "b")
    bare = store.root / "birds" / "models" / "copied_by_hand" / "weights"
    bare.mkdir(parents=True)
    (bare / "best.pt").write_bytes(b"hand made")
    registry = store.root / "birds" / "registry.json"
    before = json.loads(registry.read_text())
    registry.write_text("{broken")
    assert store.rebuild_registry("birds") == ["a", "b", "copied_by_hand"]
    assert [p.name for p in registry.parent.glob("registry.json.corrupt-*")] != []
    after = json.loads(registry.read_text())
    assert after["active"] is None  # the broken file could not say which was active
    assert after["models"]["a"] == before["models"]["a"]
    hand = store.get("birds", "copied_by_hand")
    assert hand.weights_sha256 == sha256_file(bare / "best.pt")
    store.set_active("birds", "a")
    assert store.rebuild_registry("birds") == ["a", "b", "copied_by_hand"]
    active = store.get_active("birds")
    assert active is not None
    assert active.name == "a"


WRITER = """
import sys
from pathlib import Path
from smalltrain.store import ModelEntry, ModelStore
root, tag, weights = sys.argv[1], sys.argv[2], Path(sys.argv[3])
store = ModelStore(Path(root))
print("ready", flush=True)
sys.stdin.readline()
for i in range(200):
    if i % 40 == 0:  # a few real saves among the raw registry edits
        store.save(ModelEntry(dataset="shared", name=f"{tag}-{i}", weights=weights, task="audio",
                   config={"i": i}, metrics={}, base_model=None, epochs_completed=i,
                   headline=("best_val_loss", 0.5), dataset_snapshot="3 files, 2.0 s",
                   dataset_fingerprint="f"))
    else:
        def change(registry, i=i):
            registry["models"][f"{tag}-{i}"] = {"created": f"2024-01-01T00:00:{i % 60:02d}Z",
                                                "epochs_completed": i}
            registry["active"] = f"{tag}-{i}"
        store.update_registry("shared", change)
"""


def test_two_processes_writing_200_times_lose_nothing(store: ModelStore, weights: Path) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(store.root), tag, str(weights)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for tag in ("p", "q")
    ]
    for p in procs:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ready"
    for p in procs:  # release both at once
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    registry = store.root / "shared" / "registry.json"
    reads = 0
    while any(p.poll() is None for p in procs):  # a reader racing the writers
        if registry.exists():
            json.loads(registry.read_text())
            reads += 1
    for p in procs:
        p.communicate(timeout=120)
        assert p.returncode == 0
    data = json.loads(registry.read_text())
    expected = {f"{tag}-{i}" for tag in ("p", "q") for i in range(200)}
    assert set(data["models"]) == expected
    assert data["active"] in expected
    saved = {p.name for p in (store.root / "shared" / "models").iterdir()}
    assert saved == {f"{tag}-{i}" for tag in ("p", "q") for i in range(0, 200, 40)}
    assert reads > 0
