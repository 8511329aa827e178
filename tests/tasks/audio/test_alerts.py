"""The over/underfitting verdict (``alerts.py``) on synthetic curves: claimed only when the
evidence holds, never flip-flopping, a contradiction replaces the standing warning with a
reason, and a resumed run goes on with the same verdict."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from smalltrain.engine.events import Event, WarningEvent
from smalltrain.tasks.audio.training.alerts import FitWatch, fit_warnings
from tests.tasks.audio.test_train import tiny_config

PCA = 0.45  # PCA's validation SC in every synthetic epoch


def _run(**cfg: Any) -> SimpleNamespace:
    state = SimpleNamespace(epoch=0, global_step=0)
    return SimpleNamespace(
        config=tiny_config(**cfg), state=state, steps_per_epoch=40, fit=FitWatch()
    )


def _feed(run: SimpleNamespace, curves: list[tuple[float, float]], first: int = 0) -> list[str]:
    """Feed (val/train loss gap, train SC) per epoch; returns ``"<code>@<epoch>"`` warned."""
    out: list[WarningEvent] = []

    def record(event: Event) -> None:
        assert isinstance(event, WarningEvent)
        out.append(event)

    for i, (gap, sc) in enumerate(curves):
        epoch = first + i
        run.state.epoch, run.state.global_step = epoch, (epoch + 1) * 40
        metrics = {"train/loss": 1.0, "val/loss": 1.0 + gap, "train/sc": sc, "pca/sc": PCA}
        fit_warnings(run, metrics, record)
    run.events = out
    return [f"{e.code}@{e.epoch}" for e in out]


# per-epoch evidence (val/train loss gap, train SC): none, overfitting, underfitting, both
FIT, OVER, UNDER, BOTH = (0.0, 0.2), (0.5, 0.2), (0.0, 0.7), (0.5, 0.7)
CASES = {
    # a blip of one or two epochs never claims a verdict
    "one-epoch blips are ignored": ([FIT, OVER, FIT, OVER, OVER, FIT] * 4, []),
    # three epochs in a row claim it; a standing verdict is not repeated every epoch
    "overfitting held claims once": ([FIT] + [OVER] * 10, ["overfitting@3"]),
    # the run: overfitting early, underfitting later: the later one replaces it
    "contradiction replaces": (
        [OVER] * 5 + [BOTH] * 25,
        ["overfitting@2", "underfitting@24"],  # underfitting needs 1,000 steps (epoch 24)
    ),
    # the gap closes first (withdrawn), then underfitting is claimed on its own
    "withdrawn, then the other": (
        [OVER] * 5 + [UNDER] * 25,
        ["overfitting@2", "fit_recovered@7", "underfitting@24"],
    ),
    # a verdict is withdrawn only after its evidence is absent three epochs in a row
    "recovery needs three clean epochs": (
        [OVER] * 3 + [FIT, FIT, OVER] + [FIT] * 3,
        ["overfitting@2", "fit_recovered@8"],
    ),
    # both at once: underfitting wins (no overfitting claim beside it)
    "both: underfitting wins": ([BOTH] * 30, ["underfitting@24"]),
    # a standing verdict repeats after 20 epochs or at 1.5x growth only
    "repeat rule": (
        [OVER] * 3 + [(0.8, 0.2)] + [OVER] * 25,
        ["overfitting@2", "overfitting@3", "overfitting@23"],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_the_verdict_follows_the_rule(name: str) -> None:
    curves, expected = CASES[name]
    assert _feed(_run(epochs=100), curves) == expected


def test_a_contradiction_says_what_it_replaces_and_why() -> None:
    run = _run(epochs=100, early_stopping_patience=10)
    _feed(run, [OVER] * 5 + [BOTH] * 25)
    last = run.events[-1].message
    assert "This replaces the overfitting warning of epoch 3" in last
    assert "does not yet fit its own training sounds" in last
    # the advice itself is intact
    assert "0.700" in last
    assert "0.450" in last
    assert "1000 steps" in last
    assert "epochs=200" in last
    assert "early_stopping_patience=0" in last
    assert "chunk_gain=true" in last
    run = _run(epochs=100)
    _feed(run, [UNDER] * 30 + [OVER] * 3)
    assert "This replaces the underfitting warning of epoch 25" in run.events[-1].message


def test_a_resumed_run_goes_on_with_the_same_verdict() -> None:
    whole = _run(epochs=100)
    curves = [OVER] * 5 + [BOTH] * 25
    straight = _feed(whole, curves)
    first = _run(epochs=100)
    before = _feed(first, curves[:10])
    saved = first.fit.state_dict()  # what the checkpoint keeps
    resumed = _run(epochs=100)
    resumed.fit.load_state_dict(saved)
    after = _feed(resumed, curves[10:], first=10)
    assert before + after == straight
    # without the saved state the analysis would start over (and warn again)
    fresh = _feed(_run(epochs=100), [OVER] * 5, first=10)
    assert fresh == ["overfitting@12"]


def test_the_job_view_shows_the_standing_verdict_only() -> None:
    from smalltrain.tasks.audio.training.alerts import FIT_CODES
    from smalltrain.ui.viewmodels.jobs import VERDICT_CODES, standing_warnings

    assert VERDICT_CODES == FIT_CODES
    run = _run(epochs=100)
    _feed(run, [OVER] * 5 + [BOTH] * 25)
    shown = [{"code": "dataset_changed"}] + [
        {"code": e.code, "message": e.message, "epoch": e.epoch} for e in run.events
    ]
    assert [w["code"] for w in standing_warnings(shown)] == ["dataset_changed", "underfitting"]
