"""Asynchronous successive halving (ASHA): which sweep trials to stop early.

The rule of Ray Tune's ``ASHAScheduler`` (Li et al., "A System for Massively Parallel
Hyperparameter Tuning", 2020), as a pure function of the reports stored in the database, so
any process can apply it and a restarted one reaches the same decisions:

- Rungs sit at ``grace * rf**k`` epochs (1, 2, 4, ... with the defaults), below the trials'
  length (a trial that reached its last epoch is done anyway).
- When a trial first reports at a rung, its metric is compared with the reports that reached
  that rung before it: if it is worse than the ``1 - 1/rf`` quantile of them (the median for
  ``rf=2``), the trial stops. The first trial to reach a rung always goes on, as in Ray.

Reports come as ``EpochReport``s in arrival order (``store.sweeps``). Only a trial's first
report at a rung counts (a resumed trial reports some epochs twice).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from smalltrain.engine.config import check
from smalltrain.store.sweeps import EpochReport

__all__ = ["Asha", "Stop", "quantile"]


@dataclass(frozen=True)
class Stop:
    """Why a trial stops: at ``epochs`` its ``value`` was worse than the rung's ``cutoff``
    among ``others`` trials that reached the rung before it."""

    epochs: int
    value: float
    cutoff: float
    others: int

    def reason(self, metric: str) -> str:
        """One line for the job's status (with the digits that tell the two numbers apart)."""
        digits = next(
            (d for d in range(4, 13) if f"{self.value:.{d}g}" != f"{self.cutoff:.{d}g}"), 4
        )
        return (
            f"stopped early by ASHA after epoch {self.epochs}: {metric} {self.value:.{digits}g} "
            f"is worse than the cut-off {self.cutoff:.{digits}g} of the {self.others} trial(s) "
            "that reached this epoch first"
        )


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` with linear interpolation (numpy's default)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True)
class Asha:
    """The stopping rule for one sweep (see the module docstring).

    Args:
        max_epochs: the trials' length; rungs stop below it.
        mode: "min" when lower is better (``val/sc``), "max" when higher is (mAP).
        grace: epochs every trial runs before it may be stopped.
        rf: the reduction factor; about ``1/rf`` of the trials go on at each rung.

    Raises:
        ConfigError: a value breaks its rule.
    """

    max_epochs: int
    mode: str = "min"
    grace: int = 1
    rf: int = 2

    def __post_init__(self) -> None:
        check("mode", self.mode, self.mode in ("min", "max"), "must be 'min' or 'max'")
        check("grace_epochs", self.grace, self.grace >= 1, "must be >= 1")
        check("reduction_factor", self.rf, self.rf >= 2, "must be >= 2")

    def rungs(self) -> list[int]:
        """The epochs at which trials are compared, lowest first."""
        out, t = [], self.grace
        while t < self.max_epochs:
            out.append(t)
            t *= self.rf
        return out

    def decide(self, reports: Sequence[EpochReport], job_id: str) -> Stop | None:
        """Whether ``job_id`` should stop, judged at the highest rung it has reached."""
        mine = [r for r in reports if r.job_id == job_id]
        if not mine:
            return None
        reached = max(r.epoch + 1 for r in mine)
        passed = [t for t in self.rungs() if t <= reached]
        if not passed:
            return None
        return self._at_rung(reports, job_id, passed[-1])

    def _at_rung(self, reports: Sequence[EpochReport], job_id: str, rung: int) -> Stop | None:
        first: dict[str, EpochReport] = {}  # each trial's first report at or past the rung
        for r in reports:
            if r.epoch + 1 >= rung and r.job_id not in first:
                first[r.job_id] = r
        own = first.get(job_id)
        if own is None:
            return None
        earlier = [r.value for r in first.values() if r.event_id < own.event_id]
        if not earlier:
            return None
        sign = 1.0 if self.mode == "max" else -1.0  # compare as rewards: higher is better
        cutoff = sign * quantile([sign * v for v in earlier], 1 - 1 / self.rf)
        if sign * own.value < sign * cutoff:
            return Stop(epochs=rung, value=own.value, cutoff=cutoff, others=len(earlier))
        return None
