"""Deleting the active model: the best remaining one on the task's metric becomes active (not
the newest), through the one service call every face uses (``delete_and_promote``)."""

from __future__ import annotations

from pathlib import Path

from smalltrain.service.manager import TrainingManager
from smalltrain.store import ModelEntry, ModelStore


def _save(store: ModelStore, weights: Path, name: str, sc: float | None) -> None:
    store.save(ModelEntry(
        dataset="kicks", name=name, weights=weights, task="audio", config={}, metrics={},
        base_model=None, epochs_completed=1, headline=("val/sc", sc), dataset_snapshot="4 files",
        dataset_fingerprint="f", headline_mode="min",
    ))  # fmt: skip


def test_deleting_the_active_model_activates_the_best_not_the_newest(tmp_path: Path) -> None:
    home = tmp_path / "home"
    weights = tmp_path / "best.pt"
    weights.write_bytes(b"not really weights")
    manager = TrainingManager.open(home, autostart=False)
    store = manager.models
    _save(store, weights, "first", 0.30)  # the first model: active
    _save(store, weights, "best", 0.20)
    _save(store, weights, "newest", 0.50)
    _save(store, weights, "unscored", None)
    store.set_active("kicks", "first")

    outcome = manager.model_queries.delete_and_promote("first", "kicks")
    assert outcome.deleted
    assert outcome.active is not None
    assert outcome.active.name == "best"
    assert store.get_active("kicks").name == "best"  # type: ignore[union-attr]
    assert "lowest" in outcome.why
    assert "0.2" in outcome.note()

    # deleting a model that is not active changes nothing else
    assert manager.model_queries.delete_and_promote("newest", "kicks").active is None
    assert store.get_active("kicks").name == "best"  # type: ignore[union-attr]
    # with no scored model left, none is active and the note says why
    manager.model_queries.delete_and_promote("best", "kicks")
    gone = manager.model_queries.delete_and_promote("unscored", "kicks")
    assert gone.active is None
