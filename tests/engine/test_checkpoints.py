"""Checkpoint save/load/retention and RNG round trips, on real files (no mocks)."""

from __future__ import annotations

import io
import json
import math
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from smalltrain.engine.checkpoints import (
    CHECKPOINT_FORMAT,
    capture_rng_state,
    checkpoint_name,
    find_resumable,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    manage_checkpoints,
    restore_rng_state,
    save_checkpoint,
    sidecar_path,
    strip_for_inference,
)
from smalltrain.errors import CheckpointError


def _state(seed: int = 0) -> dict[str, Any]:
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    return {
        "model": model.state_dict(),
        "model_args": {"in_features": 3, "out_features": 2},
        "config": {"lr": 1e-2, "name": "tiny"},
        "optimizer": opt.state_dict(),
        "rng": capture_rng_state(),
    }


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_checkpoint_name() -> None:
    assert checkpoint_name(3, 1234) == "ckpt-e0003-s00001234.pt"


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    state = _state()
    path = save_checkpoint(
        tmp_path, state, epoch=2, global_step=40, metrics={"val/loss": 0.5}, reason="final"
    )
    assert path == tmp_path / "ckpt-e0002-s00000040.pt"
    loaded = load_checkpoint(path)
    assert loaded["format"] == CHECKPOINT_FORMAT
    assert (loaded["epoch"], loaded["global_step"]) == (2, 40)
    assert loaded["metrics"] == {"val/loss": 0.5}
    assert {"python", "torch", "numpy", "smalltrain"} <= set(loaded["versions"])
    assert torch.equal(loaded["model"]["weight"], state["model"]["weight"])
    assert loaded["model_args"] == {"in_features": 3, "out_features": 2}

    side = json.loads(sidecar_path(path).read_text())
    assert side["reason"] == "final"
    assert side["size"] == path.stat().st_size
    assert len(side["sha256"]) == 64
    [info] = list_checkpoints(tmp_path)
    assert (info.epoch, info.global_step, info.reason) == (2, 40, "final")
    assert info.metrics == {"val/loss": 0.5}


def test_failed_save_keeps_previous_file_and_no_tmp(tmp_path: Path) -> None:
    state = _state()
    path = save_checkpoint(tmp_path, state, epoch=1, global_step=10)
    before = path.read_bytes()
    # A lambda cannot be pickled: torch.save fails half-way through writing the new file.
    with pytest.raises(Exception, match="lambda|pickle|attribute"):
        save_checkpoint(tmp_path, {**state, "bad": lambda: None}, epoch=1, global_step=10)
    assert path.read_bytes() == before
    assert _files(tmp_path) == ["ckpt-e0001-s00000010.json", "ckpt-e0001-s00000010.pt"]
    load_checkpoint(path)


def test_truncated_and_random_files_raise_clear_errors(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path, _state(), epoch=1, global_step=10)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)
    assert "smalltrain resume picks the newest valid one" in str(info.value)

    junk = tmp_path / "junk.pt"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_checkpoint(junk)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.pt"):
        load_checkpoint(empty)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_non_checkpoint_and_newer_format_rejected(tmp_path: Path) -> None:
    plain = tmp_path / "plain.pt"
    torch.save({"weight": torch.zeros(2)}, plain)
    with pytest.raises(CheckpointError, match="not a smalltrain checkpoint"):
        load_checkpoint(plain)
    future = tmp_path / "future.pt"
    torch.save({"format": CHECKPOINT_FORMAT + 1}, future)
    with pytest.raises(CheckpointError, match="upgrade smalltrain"):
        load_checkpoint(future)


class Payload:
    """A custom class: unpickling it with weights_only=False would run this module's code."""

    ran = False

    def __reduce__(self) -> tuple[Any, ...]:
        return (_mark_ran, ())


def _mark_ran() -> Payload:
    Payload.ran = True
    return Payload()


def test_weights_only_refuses_pickled_code(tmp_path: Path) -> None:
    path = tmp_path / checkpoint_name(0, 1)
    buffer = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "evil": Payload()}, buffer)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(CheckpointError, match="nothing was executed"):
        load_checkpoint(path)
    assert Payload.ran is False


@pytest.mark.parametrize("where", ["model", "optimizer"])
def test_nan_state_is_never_saved(tmp_path: Path, where: str) -> None:
    state = _state()
    if where == "model":
        state["model"]["weight"][0, 0] = math.nan
    else:
        state["optimizer"]["state"][0]["exp_avg"][0, 0] = math.inf
    with pytest.raises(CheckpointError, match="NaN or inf") as info:
        save_checkpoint(tmp_path, state, epoch=1, global_step=5)
    assert where in str(info.value)
    assert _files(tmp_path) == []


def test_find_resumable_skips_corrupt_newest(tmp_path: Path) -> None:
    good = save_checkpoint(tmp_path, _state(1), epoch=1, global_step=10)
    newest = save_checkpoint(tmp_path, _state(2), epoch=2, global_step=20)
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])
    assert latest_checkpoint(tmp_path) == newest
    skipped: list[Path] = []
    found = find_resumable(tmp_path, on_skip=lambda p, why: skipped.append(p))
    assert found is not None
    assert found[0] == good
    assert found[1]["global_step"] == 10
    assert skipped == [newest]


def test_find_resumable_checks_sha_and_handles_no_sidecar(tmp_path: Path) -> None:
    good = save_checkpoint(tmp_path, _state(1), epoch=1, global_step=10)
    newest = save_checkpoint(tmp_path, _state(2), epoch=2, global_step=20)
    other = save_checkpoint(tmp_path / "other", _state(3), epoch=2, global_step=20)
    newest.write_bytes(other.read_bytes())  # loads fine, but is not what was saved here
    found = find_resumable(tmp_path)
    assert found is not None
    assert found[0] == good
    unvalidated = find_resumable(tmp_path, validate=False)
    assert unvalidated is not None
    assert unvalidated[0] == newest
    sidecar_path(newest).unlink()  # no sidecar: name gives epoch/step, the file loads
    [_, info] = list_checkpoints(tmp_path)
    assert (info.epoch, info.global_step, info.reason) == (2, 20, "unknown")
    assert find_resumable(tmp_path / "nothing-here") is None


def test_retention_keeps_last_best_and_protected(tmp_path: Path) -> None:
    state = _state()
    losses = [0.9, 0.3, 0.5, math.nan, 0.7, 0.6]  # the NaN sorts "lowest" in a naive min
    paths = [
        save_checkpoint(tmp_path, state, epoch=e, global_step=10 * e, metrics={"val/loss": loss})
        for e, loss in enumerate(losses, start=1)
    ]
    nan_side = json.loads(sidecar_path(paths[3]).read_text())
    assert nan_side["metrics"]["val/loss"] == "nan"
    assert math.isnan(list_checkpoints(tmp_path)[3].metrics["val/loss"])

    deleted = manage_checkpoints(tmp_path, keep_last=2, protect=[paths[0]])
    kept = [i.path for i in list_checkpoints(tmp_path)]
    # protected (e1), best finite (e2: 0.3), last two (e5, e6); the NaN (e4) is not best.
    assert kept == [paths[0], paths[1], paths[4], paths[5]]
    assert deleted == [paths[2], paths[3]]
    for path in deleted:
        assert not path.exists()
        assert not sidecar_path(path).exists()
    assert len(_files(tmp_path)) == 8


def test_retention_max_mode_and_newest_always_kept(tmp_path: Path) -> None:
    state = _state()
    for e, m in enumerate([0.2, 0.8, 0.4], start=1):
        save_checkpoint(tmp_path, state, epoch=e, global_step=e, metrics={"val/mAP50": m})
    manage_checkpoints(tmp_path, keep_last=0, monitor="val/mAP50", mode="max")
    assert [i.epoch for i in list_checkpoints(tmp_path)] == [2, 3]
    with pytest.raises(ValueError, match="keep_last=-1"):
        manage_checkpoints(tmp_path, keep_last=-1)
    with pytest.raises(ValueError, match="mode="):
        manage_checkpoints(tmp_path, keep_last=1, mode="lowest")


def _draws() -> tuple[Any, ...]:
    return (
        [random.random() for _ in range(3)],
        random.gauss(0, 1),
        np.random.rand(3).tolist(),
        np.random.randn(),
        torch.rand(3).tolist(),
    )


def test_rng_state_round_trips_through_a_checkpoint(tmp_path: Path) -> None:
    random.seed(7)
    np.random.seed(7)
    torch.manual_seed(7)
    _draws()
    random.gauss(0, 1)  # leaves a cached gaussian in python's state
    rng = capture_rng_state()
    expected = _draws()
    path = save_checkpoint(tmp_path, {"rng": rng}, epoch=0, global_step=1)
    _draws()  # move every generator on
    restore_rng_state(load_checkpoint(path)["rng"])
    assert _draws() == expected


def test_strip_for_inference_drops_training_state(tmp_path: Path) -> None:
    state = {**_state(), "scheduler": {"last_epoch": 3}, "sampler_state": {"pos": 2}}
    path = save_checkpoint(tmp_path, state, epoch=1, global_step=1, metrics={"val/loss": 1.0})
    stripped = strip_for_inference(load_checkpoint(path))
    assert {"model", "model_args", "config", "metrics", "versions", "format"} <= set(stripped)
    assert not {"optimizer", "scheduler", "rng", "sampler_state"} & set(stripped)
    assert stripped["inference_only"] is True
    assert os.path.exists(path)  # stripping never touches the file
