"""FileLock, try_lock and pid_alive with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from smalltrain.engine.locks import FileLock, pid_alive, read_holder, try_lock

HOLDER = """
import sys
from smalltrain.engine.locks import try_lock
lock = try_lock(sys.argv[1], role="scheduler")
print("held" if lock else "busy", flush=True)
sys.stdin.readline()
"""


def _holder(path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_lock_held_by_another_process_is_refused_then_freed(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.lock"
    proc = _holder(path)
    try:
        assert try_lock(path) is None
        holder = read_holder(path)
        assert holder is not None
        assert (holder["pid"], holder["role"]) == (proc.pid, "scheduler")
        assert not FileLock(path).acquire(timeout=0.05)
    finally:
        proc.communicate("\n", timeout=60)
    with FileLock(path) as lock:  # released when the holder exited
        assert lock.held
    assert read_holder(path) is None


def test_a_killed_holder_never_leaves_a_stale_lock(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.lock"
    proc = _holder(path)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    lock = try_lock(path)
    assert lock is not None
    assert read_holder(path)["pid"] == os.getpid()  # type: ignore[index]
    lock.release()


def test_not_reentrant_and_excludes_threads(tmp_path: Path) -> None:
    lock = FileLock(tmp_path / "x.lock")
    lock.acquire()
    with pytest.raises(RuntimeError, match="not reentrant"):
        lock.acquire()
    got = threading.Event()

    def other() -> None:
        with FileLock(tmp_path / "x.lock"):
            got.set()

    thread = threading.Thread(target=other)
    thread.start()
    assert not got.wait(timeout=0.2)
    lock.release()
    assert got.wait(timeout=30)
    thread.join(timeout=30)
    lock.release()  # a second release is a no-op


def test_pid_alive() -> None:
    assert pid_alive(os.getpid())
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=60)
    assert not pid_alive(proc.pid)
    assert not pid_alive(None)
    assert not pid_alive(0)
