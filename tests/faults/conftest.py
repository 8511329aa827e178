"""Fixtures for the fault tests: small real file systems that fill up, another user, the toy task.

A full disk is a real one: a tmpfs of a few MiB mounted for the test and filled with a
preallocated ballast file. Mounting needs root (or CAP_SYS_ADMIN); elsewhere those tests skip
with that reason.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

MIB = 1 << 20


@pytest.fixture
def toy(toy_task: None) -> None:
    """Register the toy task here and in every child process (``tests/conftest.py``)."""


@pytest.fixture
def toydata(tmp_path: Path) -> Path:
    folder = tmp_path / "toydata"
    folder.mkdir()
    (folder / "a.txt").write_text("x")
    return folder


class SmallDisk:
    """A mounted tmpfs of ``size`` bytes at ``path`` that tests can fill up."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size
        self.ballast = path / ".ballast"

    def free(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def fill(self, leave: int = 0) -> None:
        """Take all free space but ``leave`` bytes (rounded to whole pages)."""
        want = self.free() - leave
        if want <= 0:
            return
        fd = os.open(self.ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            start = os.fstat(fd).st_size
            with contextlib.suppress(OSError):  # the last page may not fit exactly
                os.posix_fallocate(fd, start, want)
        finally:
            os.close(fd)

    def empty(self) -> None:
        """Give the ballast's space back."""
        self.ballast.unlink(missing_ok=True)


@contextlib.contextmanager
def small_disk(path: Path, size: int) -> Iterator[SmallDisk]:
    """Mount a tmpfs of ``size`` bytes at ``path`` (skip the test where that is not allowed)."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(
            "a full disk is simulated with a small tmpfs, and mounting one is not allowed "
            f"here (needs root or CAP_SYS_ADMIN): {done.stderr.strip() or done.returncode}"
        )
    try:
        yield SmallDisk(path, size)
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """A 4 MiB tmpfs, empty."""
    with small_disk(tmp_path / "small", 4 * MIB) as d:
        yield d


@pytest.fixture
def big_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """A 24 MiB tmpfs, empty: room to queue a job (16 MiB free needed), then to fill up."""
    with small_disk(tmp_path / "small", 24 * MIB) as d:
        yield d


@contextlib.contextmanager
def as_nobody() -> Iterator[None]:
    """Run the block with the file permissions of an unprivileged user.

    As root, the effective uid becomes 65534 (nobody) and back; otherwise nothing changes
    (the test user is already unprivileged).
    """
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


# --- the fault report (bench/fault_matrix.py reads it) -------------------------------------------

REPORT_ENV = "SMALLTRAIN_FAULT_REPORT"
_RESULTS: list[dict[str, object]] = []
_COUNTS: list[dict[str, object]] = []


class FaultLog:
    """What a fault test saw, for the report: per case, or counters of a matrix."""

    def count(self, group: str, **numbers: int) -> None:
        """Add counters (kills, corrupt files, ...) to ``group``."""
        _COUNTS.append({"group": group, **numbers})


@pytest.fixture
def fault_log() -> FaultLog:
    return FaultLog()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        shown = report.capstdout + report.capstderr
        failure = str(report.longrepr) if report.failed else ""
        _RESULTS.append(
            {
                "test": report.nodeid,
                "outcome": report.outcome,
                "xfail": bool(getattr(report, "wasxfail", "")),
                # output the user would see (captured, or quoted in a failed assertion)
                "traceback": "Traceback (most recent call last)" in shown + failure,
                "longrepr": failure[-2000:],
                "seconds": round(report.duration, 2),
            }
        )


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = os.environ.get(REPORT_ENV)
    if target and _RESULTS:
        import json

        Path(target).write_text(json.dumps({"tests": _RESULTS, "counts": _COUNTS}, indent=1))
