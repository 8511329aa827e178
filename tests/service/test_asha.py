"""The ASHA stopping rule as a pure function of stored reports (no clock, no randomness)."""

from __future__ import annotations

import pytest

from smalltrain.errors import ConfigError
from smalltrain.service.sweeps.asha import Asha, Stop, quantile
from smalltrain.store.sweeps import EpochReport


def _reports(*rows: tuple[str, int, float]) -> list[EpochReport]:
    """(job, epoch index, value) in arrival order."""
    return [EpochReport(i, job, epoch, value) for i, (job, epoch, value) in enumerate(rows, 1)]


def test_rungs_grow_by_the_reduction_factor_below_the_trial_length() -> None:
    assert Asha(8).rungs() == [1, 2, 4]
    assert Asha(9, grace=2, rf=3).rungs() == [2, 6]
    assert Asha(1).rungs() == []
    for bad in ({"mode": "up"}, {"grace": 0}, {"rf": 1}):
        with pytest.raises(ConfigError):
            Asha(8, **bad)


def test_quantile_interpolates_like_numpy() -> None:
    assert quantile([1.0, 3.0], 0.5) == 2.0
    assert quantile([4.0, 1.0, 2.0, 3.0], 0.75) == pytest.approx(3.25)
    assert quantile([5.0], 0.5) == 5.0


def test_the_first_trial_at_a_rung_goes_on_and_a_worse_later_one_stops() -> None:
    rule = Asha(4, "min")
    reports = _reports(("a", 0, 1.0), ("b", 0, 2.0))
    assert rule.decide(reports, "a") is None
    stop = rule.decide(reports, "b")
    assert stop is not None
    assert (stop.epochs, stop.value, stop.cutoff, stop.others) == (1, 2.0, 1.0, 1)
    assert "after epoch 1: val/sc 2 is worse than the cut-off 1" in stop.reason("val/sc")


def test_a_trial_is_judged_only_against_those_that_reached_the_rung_before_it() -> None:
    rule = Asha(4, "min")
    # b is bad but arrived first at epoch 1: it goes on there, as in Ray's ASHA.
    reports = _reports(("b", 0, 9.0), ("a", 0, 1.0), ("c", 0, 5.0))
    assert rule.decide(reports, "b") is None
    assert rule.decide(reports, "a") is None  # better than b
    assert rule.decide(reports, "c") is None  # median of (9, 1) is 5: not worse
    # At the next rung b is compared with a, which got there first.
    reports += _reports(("a", 1, 0.5), ("b", 1, 8.0))
    reports = [EpochReport(i, r.job_id, r.epoch, r.value) for i, r in enumerate(reports, 1)]
    stop = rule.decide(reports, "b")
    assert stop is not None
    assert stop.epochs == 2


def test_max_mode_stops_the_lower_ones_and_ties_never_stop() -> None:
    rule = Asha(4, "max")
    assert rule.decide(_reports(("a", 0, 0.4), ("b", 0, 0.1)), "b") is not None
    assert rule.decide(_reports(("a", 0, 0.4), ("b", 0, 0.9)), "b") is None
    assert rule.decide(_reports(("a", 0, 0.0), ("b", 0, 0.0)), "b") is None


def test_a_resumed_trial_is_judged_by_its_first_report_at_the_rung() -> None:
    rule = Asha(4, "min")
    # b reported epoch 1 first with a good value, then (resumed) again with a worse one.
    reports = _reports(("a", 0, 2.0), ("b", 0, 1.0), ("b", 0, 3.0))
    assert rule.decide(reports, "b") is None


def test_no_decision_before_the_grace_period_or_without_reports() -> None:
    rule = Asha(8, "min", grace=2)
    assert rule.decide(_reports(("a", 0, 1.0), ("b", 0, 5.0)), "b") is None
    assert rule.decide([], "b") is None


def test_the_reason_shows_the_digits_that_tell_value_and_cut_off_apart() -> None:
    """0.99991 against 0.99989 read "0.9999 is worse than the cut-off 0.9999" at 4 digits."""
    text = Stop(epochs=3, value=0.99989, cutoff=0.99991, others=2).reason("val/map50")
    assert "val/map50 0.99989 is worse than the cut-off 0.99991" in text, text
    assert "0.25 is worse than the cut-off 0.125" in Stop(1, 0.25, 0.125, 1).reason("loss")
