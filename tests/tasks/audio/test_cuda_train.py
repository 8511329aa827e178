"""The audio engine's CUDA paths on a real GPU: the NaN skip on the device (fused AdamW told by
``found_inf``, no host sync per step), rollback, and a short real run. Skipped without CUDA (CI
has none; the numbers from a real card are in bench/README.md, "GPU verification")."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from smalltrain.engine.checkpoints import list_checkpoints, load_checkpoint
from smalltrain.engine.context import CancelToken
from smalltrain.engine.events import StepMetrics, WarningEvent
from smalltrain.errors import TrainingDiverged
from smalltrain.tasks.audio.data.synth import make_sound_folder
from smalltrain.tasks.audio.training.epoch import train_epoch
from smalltrain.tasks.audio.training.train import train
from tests.tasks.audio.test_train import Recorder, _state, tiny_config

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

STEPS = 20
SYNC_EVERY = 10


def test_a_nan_is_skipped_on_the_device_without_a_host_sync_per_step() -> None:
    cfg = tiny_config(device="cuda", metrics_sync_every=SYNC_EVERY)
    state = _state(cfg)
    state.model.to("cuda")
    state.device = torch.device("cuda")
    state.optimizer = torch.optim.AdamW(state.model.parameters(), lr=cfg.learning_rate, fused=True)
    batches = [torch.rand(2, 1, cfg.n_mels, cfg.n_frames, device="cuda") for _ in range(STEPS)]
    batches[7][0, 0, 0, 0] = float("nan")
    rec = Recorder()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")  # one warning per synchronising call
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            outcome = train_epoch(
                state, batches, steps_per_epoch=STEPS, emit=rec, cancel=CancelToken()
            )
    finally:
        torch.cuda.set_sync_debug_mode(0)
    syncs = [w for w in caught if "synchroniz" in str(w.message).lower()]
    assert outcome == "completed"
    # the metrics are read every SYNC_EVERY steps, not every step
    assert len(syncs) <= 2 * (STEPS // SYNC_EVERY), [str(w.message)[:100] for w in syncs]
    skipped = [e.metrics["train/skipped"] for e in rec.of(StepMetrics)]
    assert skipped == [1.0 if i == 7 else 0.0 for i in range(STEPS)]
    assert state.skipped_total == 1
    assert {int(s["step"]) for s in state.optimizer.state.values()} == {STEPS - 1}
    assert state.lr_schedule.step_count == STEPS - 1  # corrected at the host read
    assert all(torch.isfinite(v).all() for v in state.model.state_dict().values())


def test_divergence_rolls_back_on_the_gpu(tmp_path: Path) -> None:
    sounds = tmp_path / "sounds"
    make_sound_folder(sounds, n_files=6, seed=1)
    cfg = tiny_config(
        device="cuda",
        learning_rate=1e12,
        lr_schedule="constant",
        grad_clip_norm=0.0,
        nan_skip_limit=2,
        max_rollbacks=2,
    )
    rec = Recorder()
    with pytest.raises(TrainingDiverged, match="Lower learning_rate"):
        train(cfg, sounds, tmp_path / "run", emit=rec)
    rollbacks = [e for e in rec.of(WarningEvent) if e.code == "rollback"]
    assert len(rollbacks) == 2
    for info in list_checkpoints(tmp_path / "run" / "checkpoints"):
        state = load_checkpoint(info.path)
        assert all(torch.isfinite(v).all() for v in state["model_state"].values())


def test_a_short_real_run_on_the_gpu(tmp_path: Path) -> None:
    sounds = tmp_path / "sounds"
    make_sound_folder(sounds, n_files=8, seed=2)
    result = train(tiny_config(device="cuda", epochs=2), sounds, tmp_path / "run")
    assert result.status == "completed"
    assert result.epochs_completed == 2
    assert result.weights is not None
    assert Path(result.weights).is_file()
