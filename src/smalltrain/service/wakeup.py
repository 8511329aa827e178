"""Wake a home's scheduler in another process as soon as a job is queued.

An idle scheduler polls the database every ``idle_poll_s`` (1 s; ``bench_scheduler_idle.py``
measures what the poll costs), so a job queued by another process (``smalltrain train``
while a worker runs, ``smalltrain ui``'s planner) waited up to a second before it started.
Now the scheduler also listens on a datagram socket named after its home, and the process that
queues a job sends it one byte (``wake``). The poll stays: a lost wake only costs the old wait.

The socket is in Linux's abstract namespace (``\\0smalltrain-<hash of the home>``): nothing on
disk to leave behind, no path length limit. Any local account could send to it, so the
listener checks the sender's uid (``SO_PASSCRED``) and wakes at most once per ``MIN_GAP_S``: a
stranger's datagrams are dropped, and a flood cannot make the loop spin. Off Linux both ends
do nothing and the poll alone remains.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["MIN_GAP_S", "WakeListener", "wake"]

MIN_GAP_S = 0.02
_CREDS = struct.Struct("3i")  # struct ucred: pid, uid, gid
_SUPPORTED = sys.platform.startswith("linux") and hasattr(socket, "SO_PASSCRED")


def _address(home: Path) -> str:
    digest = hashlib.sha256(os.fsencode(Path(home).resolve())).hexdigest()[:32]
    return f"\0smalltrain-{digest}"


def wake(home: Path) -> None:
    """Tell the scheduler of ``home``, if one listens, to look at the queue now."""
    if not _SUPPORTED:
        return
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"w", _address(home))


class WakeListener:
    """Calls ``on_wake`` when a process of this user calls ``wake(home)``; on its own thread.

    Args:
        home: the scheduler's home.
        on_wake: what to do (the scheduler sets its ``wake`` event).
    """

    def __init__(self, home: Path, on_wake: Callable[[], None]) -> None:
        self.home = Path(home)
        self.on_wake = on_wake
        self._sock: socket.socket | None = None
        self._closed = threading.Event()

    def start(self) -> bool:
        """Listen; False where that is not possible (not Linux, or the name is taken)."""
        if not _SUPPORTED or self._sock is not None:
            return self._sock is not None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            sock.bind(_address(self.home))
            sock.settimeout(0.5)  # to notice close()
        except OSError:
            sock.close()
            return False
        self._sock, self._closed = sock, threading.Event()
        threading.Thread(
            target=self._listen, args=(sock, self._closed), name="smalltrain-wake", daemon=True
        ).start()
        return True

    def _listen(self, sock: socket.socket, closed: threading.Event) -> None:
        uid = os.getuid()
        space = socket.CMSG_SPACE(_CREDS.size)
        while not closed.is_set():
            try:
                _, ancillary, _, _ = sock.recvmsg(16, space)
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            if any(
                level == socket.SOL_SOCKET
                and kind == socket.SCM_CREDENTIALS
                and _CREDS.unpack(data[: _CREDS.size])[1] == uid
                for level, kind, data in ancillary
            ):
                self.on_wake()
                time.sleep(MIN_GAP_S)

    def close(self) -> None:
        """Stop listening (the name is free again at once)."""
        self._closed.set()
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
