"""Run part of a test with no network: a fresh network namespace holding only loopback.

``offline()`` moves the calling thread (and every process it starts from then on: the server,
the browser) into a new network namespace with just ``lo`` up, and moves it back afterwards.
It needs root (CAP_SYS_ADMIN), as in CI; elsewhere ``available()`` says why not.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import subprocess
from collections.abc import Iterator

CLONE_NEWNET = 0x40000000


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def available() -> str | None:
    """None if ``offline()`` can work here, else the reason it cannot."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root to create a network namespace (CI runs make test as root)"
    if shutil.which("ip") is None:
        return "needs the `ip` command (iproute2) to bring loopback up"
    return None


@contextlib.contextmanager
def offline() -> Iterator[None]:
    """Inside: this thread and its new child processes see only loopback."""
    libc = _libc()
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        if libc.unshare(CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"unshare(CLONE_NEWNET) failed: {os.strerror(err)}")
        try:
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True, capture_output=True)
            yield
        finally:
            if libc.setns(original, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns back to the original network failed: {os.strerror(err)}")
    finally:
        os.close(original)


def has_route_out() -> bool:
    """Whether any interface but loopback is up (a check that ``offline`` really isolates)."""
    out = subprocess.run(["ip", "-o", "link", "show", "up"], capture_output=True, text=True).stdout
    return any(" lo:" not in line for line in out.splitlines() if line.strip())
