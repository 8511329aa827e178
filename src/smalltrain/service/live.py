"""Live job events: an in-process hub, subscriptions, and following a job from the store.

- ``EventHub``: the scheduler publishes each running job's events here; ``Subscription``s
  read them from a queue, so a slow reader never slows training. ``publish(job_id, None)``
  marks a job's end. The hub's condition also wakes ``TrainingManager.wait``.
- ``follow_events``: any process reads a job's stored events with ``events_after``, polling
  with back-off (20 ms growing to 0.5 s), until the job has ended and every event is read.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from smalltrain.engine.events import EVENT_TYPES, Event, event_from_dict

if TYPE_CHECKING:
    from smalltrain.store.db import JobStore

__all__ = ["EventHub", "Subscription", "follow_events", "last_event_id", "to_event"]

_MIN_DELAY = 0.02
_MAX_DELAY = 0.5


class EventHub:
    """Fans a job's live events out to subscribers' queues (thread-safe)."""

    def __init__(self) -> None:
        self._queues: dict[str, list[queue.SimpleQueue[Event | None]]] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition()

    def publish(self, job_id: str, event: Event | None) -> None:
        """Deliver ``event`` (None: the job's attempt ended) to the job's subscribers."""
        with self._lock:
            queues = list(self._queues.get(job_id, ()))
        for q in queues:
            q.put(event)
        if event is None:
            self.notify()

    def add(self, job_id: str) -> queue.SimpleQueue[Event | None]:
        q: queue.SimpleQueue[Event | None] = queue.SimpleQueue()
        with self._lock:
            self._queues.setdefault(job_id, []).append(q)
        return q

    def remove(self, job_id: str, q: queue.SimpleQueue[Event | None]) -> None:
        with self._lock:
            queues = self._queues.get(job_id, [])
            if q in queues:
                queues.remove(q)
            if not queues:
                self._queues.pop(job_id, None)

    def notify(self) -> None:
        """Wake everyone in ``wait_change`` (a job changed state)."""
        with self._changed:
            self._changed.notify_all()

    def wait_change(self, timeout: float) -> None:
        """Sleep until ``notify`` or ``timeout`` seconds, whichever comes first."""
        with self._changed:
            self._changed.wait(timeout)


def to_event(data: dict[str, Any]) -> Event | None:
    """Rebuild an engine event from a stored dict; None for other records (status changes)."""
    if data.get("type") not in EVENT_TYPES:
        return None
    return event_from_dict(data)


def last_event_id(store: JobStore, job_id: str) -> int:
    """The id of a job's newest stored event (0 if none), to follow only what comes next."""
    last = 0
    while rows := store.history.events_after(job_id, last, limit=10_000):
        last = rows[-1][0]
    return last


def follow_events(
    store: JobStore,
    job_id: str,
    after_id: int = 0,
    hub: EventHub | None = None,
    *,
    timeout: float | None = None,
    ended: Callable[[str], bool] | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(id, event dict)`` after ``after_id`` until the job has ended and all is read.

    Args:
        ended: tells whether the job has ended (the manager's settles a job whose owner
            died); by default the store's status is read.

    Raises:
        TimeoutError: the job has not ended within ``timeout`` seconds.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = _MIN_DELAY
    while True:
        rows = store.history.events_after(job_id, after_id)
        if rows:
            for event_id, data in rows:
                after_id = event_id
                yield event_id, data
            delay = _MIN_DELAY
            continue
        if ended(job_id) if ended is not None else store.get_job(job_id).is_terminal:
            if not store.history.events_after(job_id, after_id, limit=1):
                return
            continue
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"job {job_id} did not end within {timeout} s")
        if hub is not None:
            hub.wait_change(delay)
        else:
            time.sleep(delay)
        delay = min(delay * 1.5, _MAX_DELAY)


class Subscription:
    """An iterator over one job's events that ends when the job ends.

    It listens on the hub from the moment it is made, so no event is missed. At the first
    ``next()`` it stays live if this process runs the scheduler, else it follows the store.

    Args:
        store: the home's job store.
        hub: the process's event hub.
        job_id: the job to follow.
        after_id: follow stored events after this id.
        live: tells, at the first ``next()``, whether this process runs the scheduler (then
            events come from the hub, else from the store).
        ended: tells whether the job has ended (see ``follow_events``).
    """

    def __init__(
        self,
        store: JobStore,
        hub: EventHub,
        job_id: str,
        after_id: int = 0,
        *,
        live: Callable[[], bool],
        ended: Callable[[str], bool] | None = None,
    ) -> None:
        self.job_id = job_id
        self._ended = ended or (lambda job_id: store.get_job(job_id).is_terminal)
        self.after_id = after_id
        self._runs_here = live
        self._store = store
        self._hub = hub
        self._queue: queue.SimpleQueue[Event | None] | None = self._hub.add(job_id)
        self._follow: Iterator[tuple[int, dict[str, Any]]] | None = None
        self.live: bool | None = None

    def __iter__(self) -> Subscription:
        return self

    def __next__(self) -> Event:
        if self.live is None:
            self.live = self._runs_here()
            if not self.live:
                self.close()
                self._follow = follow_events(
                    self._store, self.job_id, self.after_id, self._hub, ended=self._ended
                )
        if self._follow is not None:
            for _, data in self._follow:
                event = to_event(data)
                if event is not None:
                    return event
            raise StopIteration
        return self._next_live()

    def _next_live(self) -> Event:
        if self._queue is None:
            raise StopIteration
        while True:
            try:
                item = self._queue.get(timeout=_MAX_DELAY)
            except queue.Empty:
                # Ended without running here (cancelled while queued): nothing more will come.
                if self._ended(self.job_id):
                    self.close()
                    raise StopIteration from None
                continue
            if item is None:
                self.close()
                raise StopIteration
            return item

    def close(self) -> None:
        """Stop receiving events."""
        if self._queue is not None:
            self._hub.remove(self.job_id, self._queue)
            self._queue = None

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
