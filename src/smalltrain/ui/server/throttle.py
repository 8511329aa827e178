"""Slow down guessing: repeated wrong passwords or tokens lock the client's address a while.

After ``limit`` failures from one address within ``window_s``, the address is locked for 1 s,
then 2, 4, ... up to ``max_lock_s`` for each further failure; while locked, its password
attempts get 429 with ``Retry-After`` without being checked, so guessing gains nothing. A
request with no credentials at all is not a failure (a browser's first visit), and a request
that succeeds is never slowed.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Throttle"]


@dataclass
class _Record:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0
    locks: int = 0


class Throttle:
    """Failures per client address, and the lock they earn.

    Args:
        limit: failures allowed within ``window_s`` before the address is locked.
        window_s: the window the failures are counted in.
        max_lock_s: the longest lock.
        max_clients: addresses remembered at most (the oldest are forgotten first).
        clock: the time source (tests pass a fake one).
    """

    def __init__(
        self,
        limit: int = 10,
        window_s: float = 60.0,
        max_lock_s: float = 60.0,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_lock_s = max_lock_s
        self.max_clients = max_clients
        self.clock = clock
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> float:
        """Seconds until ``client`` may try again (0: not locked)."""
        with self._lock:
            record = self._records.get(client)
            return max(0.0, record.locked_until - self.clock()) if record else 0.0

    def failed(self, client: str) -> float:
        """Count a failure; the lock it starts, in seconds (0: none yet)."""
        now = self.clock()
        with self._lock:
            record = self._records.pop(client, None) or _Record()
            self._records[client] = record  # most recent last
            while record.failures and record.failures[0] < now - self.window_s:
                record.failures.popleft()
            if not record.failures:
                record.locks = 0  # a quiet window forgives
            record.failures.append(now)
            if len(self._records) > self.max_clients:
                del self._records[next(iter(self._records))]
            if len(record.failures) < self.limit:
                return 0.0
            lock = min(self.max_lock_s, 2.0**record.locks)
            record.locks += 1
            record.locked_until = now + lock
            return lock
