"""A run's own record of its events: ``run_dir/events.jsonl``, one ``Event.to_dict()`` a line.

The job database is the main record, but it is written by the scheduler process: when that
process dies, the events its child sent in the last moments die with it. The run folder's log
is written by whoever runs the task, so a resumed job can take back from it what the database
never received (``epochs_before``: the epoch metrics of a dead parent's last epoch).

Step events are buffered and every other event is flushed at once. The log is secondary: a
write that fails (a full disk) stops it with one warning, and training goes on.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import IO, Any

from smalltrain.engine.events import EpochMetrics, Event, StepMetrics, event_from_dict

__all__ = ["EVENTS_FILE", "EventLog", "epochs_before"]

EVENTS_FILE = "events.jsonl"

log = logging.getLogger(__name__)


class EventLog:
    """Appends events to a JSON-lines file (see the module docstring). Thread-safe.

    Args:
        path: the log file; its folder is created on the first event.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: IO[str] | None = None
        self._broken = False
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        """Append ``event`` (never raises)."""
        if self._broken:
            return
        line = json.dumps(event.to_dict(), default=str)
        with self._lock:
            try:
                if self._file is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
                self._file.write(line + "\n")
                if not isinstance(event, StepMetrics):
                    self._file.flush()
            except OSError as exc:
                self._broken = True
                log.warning("%s: events are no longer logged here: %s", self.path, exc)

    def close(self) -> None:
        """Flush and close the file (a failing flush is dropped, as any write of the log)."""
        with self._lock:
            if self._file is not None:
                try:
                    self._file.close()
                except OSError as exc:
                    log.warning("%s: the last events were not logged: %s", self.path, exc)
                self._file = None


def epochs_before(path: str | Path, epoch: int) -> dict[int, EpochMetrics]:
    """The epoch events logged in ``path`` for epochs before ``epoch`` (the last logged of
    each: a resumed attempt replays an epoch the same way). A missing file gives nothing; a
    line cut short by a kill, or of an unknown event type, is skipped."""
    found: dict[int, EpochMetrics] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return found
    for line in lines:
        try:
            data: Any = json.loads(line)
            if not isinstance(data, dict) or data.get("type") != EpochMetrics.type:
                continue
            event = event_from_dict(data)
        except (ValueError, TypeError):
            continue
        if isinstance(event, EpochMetrics) and event.epoch < epoch:
            found[event.epoch] = event
    return found
