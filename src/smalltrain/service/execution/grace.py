"""How long a cancelled job may take to checkpoint and stop before it is killed.

One rule for every executor that can kill a job (a child process, a Ray actor): a graceful
cancel finishes the step in progress and saves, so the job gets ``grace_s`` (the save) or
``STEP_GRACE_FACTOR`` times its slowest step so far, whichever is longer; an immediate cancel
gets at most ``IMMEDIATE_GRACE_S``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from smalltrain.engine.context import CancelMode

__all__ = ["IMMEDIATE_GRACE_S", "STEP_GRACE_FACTOR", "StepTimer", "cancel_grace"]

#: Seconds an "immediate" cancel leaves the job before it is killed.
IMMEDIATE_GRACE_S = 1.0
#: A graceful cancel finishes the current step and saves: the job gets at least this many
#: times its slowest step so far (on top of ``grace_s``, which covers the save itself).
STEP_GRACE_FACTOR = 3.0


def cancel_grace(grace_s: float, slowest_step_s: float, mode: CancelMode) -> float:
    """Seconds a job cancelled in ``mode`` may take before it is killed."""
    grace = max(grace_s, STEP_GRACE_FACTOR * slowest_step_s)
    return min(grace, IMMEDIATE_GRACE_S) if mode == "immediate" else grace


class StepTimer:
    """The slowest step of a job, timed between two step events of one epoch."""

    def __init__(self) -> None:
        self.slowest_s = 0.0
        self._last_at: float | None = None

    def see(self, payload: Any) -> None:
        """Time ``payload`` if it is a step event (a dict with type "step")."""
        if not isinstance(payload, Mapping) or payload.get("type") != "step":
            return
        now = time.monotonic()
        if self._last_at is not None and int(payload.get("step", 0)) > 0:
            self.slowest_s = max(self.slowest_s, now - self._last_at)
        self._last_at = now
