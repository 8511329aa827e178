"""Atomic writes and hashing in smalltrain.engine.fsutil, on real files."""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import IO

import pytest

from smalltrain.engine.fsutil import (
    atomic_write,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    remove_partial_writes,
    sha256_bytes,
    sha256_file,
)


def _stray_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_atomic_write_bytes_creates_parents_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "file.bin"
    assert atomic_write_bytes(target, b"first") == target
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert _stray_files(target.parent) == []


def test_atomic_write_text_and_json(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "t.txt", "héllo\n")
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "héllo\n"
    atomic_write_json(tmp_path / "d.json", {"a": [1, 2], "b": None})
    assert json.loads((tmp_path / "d.json").read_text()) == {"a": [1, 2], "b": None}


def test_failed_write_keeps_old_file_and_leaves_no_tmp(tmp_path: Path) -> None:
    target = tmp_path / "registry.json"
    atomic_write_text(target, "old")

    def crash(f: IO[bytes]) -> None:
        f.write(b"half of the new conte")
        raise OSError("disk full (simulated)")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, crash)
    assert target.read_text() == "old"
    assert _stray_files(tmp_path) == []


def test_before_replace_sees_the_whole_temporary_file_and_the_old_target(
    tmp_path: Path,
) -> None:
    target = tmp_path / "last.pt"
    atomic_write_bytes(target, b"old")
    seen: list[tuple[bytes, bytes]] = []

    def look(tmp: Path, final: Path) -> None:
        seen.append((tmp.read_bytes(), final.read_bytes()))

    atomic_write(target, lambda f: f.write(b"new"), before_replace=look)
    assert seen == [(b"new", b"old")]
    assert target.read_bytes() == b"new"


def test_a_failing_before_replace_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "last.pt"
    atomic_write_bytes(target, b"old")

    def crash(tmp: Path, final: Path) -> None:
        raise RuntimeError("killed between the write and the rename (simulated)")

    with pytest.raises(RuntimeError, match="simulated"):
        atomic_write(target, lambda f: f.write(b"new"), before_replace=crash)
    assert target.read_bytes() == b"old"
    assert _stray_files(tmp_path) == []


def test_only_stale_partial_writes_go_from_a_shared_folder(tmp_path: Path) -> None:
    stale = tmp_path / ".abc.pt.k3j2h1g0.tmp"
    fresh = tmp_path / ".abd.pt.z9y8x7w6.tmp"
    kept = tmp_path / "abc.pt"
    for p in (stale, fresh, kept):
        p.write_bytes(b"x")
    hour_ago = time.time() - 3700
    os.utime(stale, (hour_ago, hour_ago))
    assert remove_partial_writes(tmp_path, older_than_s=3600) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([fresh.name, kept.name])
    assert remove_partial_writes(tmp_path) == [fresh]


def test_unserialisable_json_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    atomic_write_json(target, {"ok": 1})
    with pytest.raises(TypeError):
        atomic_write_json(target, {"bad": object()})
    with pytest.raises(ValueError, match="Out of range float"):
        atomic_write_json(target, {"nan": math.nan})
    assert json.loads(target.read_text()) == {"ok": 1}
    assert _stray_files(tmp_path) == []


def test_sha256_matches_hashlib(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000  # > 1 MiB, so several chunks
    path = atomic_write_bytes(tmp_path / "x.bin", data)
    expected = hashlib.sha256(data).hexdigest()
    assert sha256_file(path) == expected
    assert sha256_bytes(data) == expected


def test_disk_full_words_name_the_path_the_space_and_a_quota(tmp_path: Path) -> None:
    import errno

    from smalltrain.engine.fsutil import disk_full_error, format_size, is_disk_full

    quota = OSError(errno.EDQUOT, "Disk quota exceeded")
    assert is_disk_full(quota)
    assert is_disk_full(RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos"))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    text = str(disk_full_error(tmp_path / "x.pt", 3 << 20, quota, what="checkpoint"))
    assert text.startswith(f"no space left to write checkpoint {tmp_path / 'x.pt'}: ")
    assert "disk quota is used up" in text
    assert "needs 3.0 MB, " in text
    assert " left" in text
    assert [format_size(n) for n in (512, 300 * 1024, 1536 * 1024)] == ["512 B", "300 KB", "1.5 MB"]


def test_atomic_writes_get_the_mode_open_would_give(tmp_path: Path) -> None:
    """Not mkstemp's 0o600: generated sounds and predictions are for the user's group too."""
    import os
    import stat

    from smalltrain.engine.fsutil import atomic_write_bytes, new_file_mode

    old = os.umask(0o027)
    try:
        assert new_file_mode() == 0o640
        written = atomic_write_bytes(tmp_path / "a.bin", b"x")
        assert stat.S_IMODE(written.stat().st_mode) == 0o640
        os.umask(0o022)
        assert stat.S_IMODE(atomic_write_bytes(tmp_path / "b.bin", b"x").stat().st_mode) == 0o644
    finally:
        os.umask(old)
