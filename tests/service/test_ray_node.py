"""The node side of the ray executor without Ray: packing, the node cache, mirroring a run
folder back, path rebasing. Real files in tmp_path; the "object store" is a counting function."""

from __future__ import annotations

import io
import os
import tarfile
import threading
from pathlib import Path

import pytest

from smalltrain.engine.fsutil import sha256_bytes
from smalltrain.service.execution.ray.node import (
    NodeCache,
    RunMirror,
    pack_tree,
    rebase,
    unpack_tree,
)


def _tree(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "a.wav").write_bytes(b"A" * 100)
    (root / "sub" / "b.txt").write_text("bee")
    return root


def test_pack_and_unpack_round_trip_and_are_deterministic(tmp_path: Path) -> None:
    src = _tree(tmp_path / "src")
    (src / "link.wav").symlink_to(src / "a.wav")
    (src / ".x.tmp").write_text("half-written")
    blob = pack_tree(src)
    assert blob == pack_tree(src)  # same folder, same bytes, same hash
    out = tmp_path / "out"
    assert sorted(unpack_tree(blob, out)) == ["a.wav", "link.wav", "sub/b.txt"]
    assert (out / "link.wav").read_bytes() == b"A" * 100
    assert not (out / "link.wav").is_symlink()
    assert sorted(unpack_tree(pack_tree(src, follow_links=False), tmp_path / "o2")) == [
        "a.wav",
        "sub/b.txt",
    ]


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/passwd", "a/../../b"])
def test_unpacking_refuses_paths_that_leave_the_folder(tmp_path: Path, name: str) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ValueError, match="must stay inside"):
        unpack_tree(buf.getvalue(), tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()


def test_the_node_cache_fetches_a_blob_once_even_when_jobs_start_together(
    tmp_path: Path,
) -> None:
    blob = pack_tree(_tree(tmp_path / "src"))
    sha = sha256_bytes(blob)
    fetched: list[int] = []

    def fetch() -> bytes:
        fetched.append(1)
        return blob

    cache = NodeCache(tmp_path / "cache")
    results: list[tuple[Path, bool]] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.entry("datasets", sha, fetch, True)))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(fetched) == 1
    assert sorted(fresh for _, fresh in results) == [False, False, False, True]
    folder = results[0][0]
    assert (folder / "sub" / "b.txt").read_text() == "bee"
    # Another cache object on the same node (a later job) finds it too.
    assert NodeCache(tmp_path / "cache").entry("datasets", sha, fetch, True) == (folder, False)
    assert len(fetched) == 1


def test_a_damaged_blob_is_refused_and_leaves_nothing_cached(tmp_path: Path) -> None:
    blob = pack_tree(_tree(tmp_path / "src"))
    cache = NodeCache(tmp_path / "cache")
    with pytest.raises(ValueError, match="damaged on the way"):
        cache.entry("datasets", sha256_bytes(blob), lambda: blob[:-10] + b"x" * 10, True)
    assert not (tmp_path / "cache" / "datasets" / sha256_bytes(blob)).exists()


def test_the_mirror_sends_each_change_once_sidecars_last_and_deletions(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "seeded.txt").write_text("from the head")
    mirror = RunMirror(run)
    mirror.prime()
    assert mirror.changes() == ([], [])
    ckpt = run / "checkpoints" / "ckpt-e0001-s00000004.pt"
    (run / "checkpoints" / "ckpt-e0001-s00000004.json").write_text("{}")
    ckpt.write_bytes(b"weights")
    (run / "checkpoints" / ".ckpt.pt.123.tmp").write_bytes(b"half")
    files, deleted = mirror.changes()
    assert [rel for rel, _ in files] == [
        "checkpoints/ckpt-e0001-s00000004.pt",
        "checkpoints/ckpt-e0001-s00000004.json",
    ]
    assert deleted == []
    assert mirror.changes() == ([], [])
    ckpt.unlink()
    (run / "checkpoints" / "ckpt-e0001-s00000004.json").unlink()
    files, deleted = mirror.changes()
    assert files == []
    assert deleted == [
        "checkpoints/ckpt-e0001-s00000004.pt",
        "checkpoints/ckpt-e0001-s00000004.json",
    ]


def test_rebase_moves_paths_under_the_node_run_folder_to_the_head(tmp_path: Path) -> None:
    local, head = str(tmp_path / "node" / "run"), str(tmp_path / "home" / "runs" / "j")
    event = {
        "path": local + os.sep + "checkpoints" + os.sep + "c.pt",
        "paths": (local + os.sep + "p.wav",),
        "other": local + "-not-inside",
        "n": 3,
    }
    moved = rebase(event, local, head)
    assert moved["path"] == head + os.sep + "checkpoints" + os.sep + "c.pt"
    assert moved["paths"] == (head + os.sep + "p.wav",)
    assert moved["other"] == local + "-not-inside"
    assert moved["n"] == 3
