"""The audio training orchestrator end to end: resume, NaN handling, cancel, retention."""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path
from typing import TypeVar

import pytest
import soundfile as sf
import torch

from smalltrain.engine.checkpoints import list_checkpoints, load_checkpoint
from smalltrain.engine.context import CancelToken
from smalltrain.engine.events import (
    CheckpointSaved,
    EpochMetrics,
    Event,
    StepMetrics,
    WarningEvent,
)
from smalltrain.engine.runner import TrainingRunner
from smalltrain.errors import CheckpointError, TrainingDiverged
from smalltrain.tasks.audio.config import TrainingConfig
from smalltrain.tasks.audio.model.losses import KLSchedule
from smalltrain.tasks.audio.model.model import ConvVAE
from smalltrain.tasks.audio.task import AudioTask, inspect_audio
from smalltrain.tasks.audio.training.epoch import LRSchedule, TrainState, _clip_on_host, train_epoch
from smalltrain.tasks.audio.training.train import train
from smalltrain.tasks.audio.use.generate import interpolate, load_model, reconstruct, sample
from tests.support.audio import make_audio_dataset
from tests.support.data import SONIC_PI, require


@pytest.fixture(scope="module")
def sounds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_audio_dataset(tmp_path_factory.mktemp("sounds"))


def tiny_config(**overrides: object) -> TrainingConfig:
    base: dict[str, object] = {
        "preset": "tiny",
        "device": "cpu",
        "epochs": 3,
        "batch_size": 4,
        "learning_rate": 2e-3,
        "chunk_hop_seconds": 0.5,
        "augmentation_expansion": 2,
        "model_width": 8,
        "model_capacity": 0.5,
        "latent_dim": 16,
        "kl_warmup_epochs": 1,
        "checkpoint_every": 1,
        "preview_every": 0,
        "early_stopping_patience": 0,
    }
    base.update(overrides)
    return TrainingConfig(**base)  # type: ignore[arg-type]


E = TypeVar("E", bound=Event)


class Recorder:
    """Collects step losses and other events; cancels at a chosen global step."""

    def __init__(self, cancel_at: int | None = None, token: CancelToken | None = None) -> None:
        self.losses: dict[int, float] = {}
        self.events: list[Event] = []
        self.cancel_at = cancel_at
        self.token = token or CancelToken()

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        if isinstance(event, StepMetrics):
            self.losses[event.global_step] = event.metrics["train/loss"]
            if event.global_step == self.cancel_at:
                self.token.cancel()

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]


def test_train_writes_checkpoints_previews_and_a_usable_model(sounds: Path, tmp_path: Path) -> None:
    cfg = tiny_config(epochs=2, preview_every=1, preview_count=2)
    rec = Recorder()
    result = train(cfg, sounds, tmp_path / "run", emit=rec)
    assert result.status == "completed"
    assert result.epochs_completed == 2
    assert result.headline_metric == "best_val_loss"
    assert result.headline_value is not None
    assert math.isfinite(result.headline_value)
    previews = sorted(p.name for p in (tmp_path / "run" / "previews").glob("epoch_*.wav"))
    assert previews == [
        "epoch_0001_recon.wav",
        "epoch_0001_sample_0.wav",
        "epoch_0001_sample_1.wav",
        "epoch_0002_recon.wav",
        "epoch_0002_sample_0.wav",
        "epoch_0002_sample_1.wav",
    ]
    # what "recon" reconstructs: a validation file of the dataset, its chunk kept as original
    info = json.loads((tmp_path / "run" / "previews" / "previews.json").read_text())["recon"]
    assert (sounds / info["file"]).is_file()
    original = sf.info(str(tmp_path / "run" / "previews" / info["original"]))
    assert original.frames == round(info["seconds"] * original.samplerate)
    epochs = [e.metrics for e in rec.of(EpochMetrics)]
    for key in ("train/loss", "train/kl", "val/loss", "val/kl_raw"):
        assert all(key in m for m in epochs), key
    steps = rec.of(StepMetrics)
    assert {"train/loss", "train/recon", "train/kl", "kl/beta", "lr", "time/step_s"} <= set(
        steps[0].metrics
    )
    # the exported model rebuilds from the file alone and generates
    loaded = load_model(tmp_path / "run")
    assert loaded.path == result.weights
    assert "optimizer_state" not in loaded.checkpoint
    wavs = sample(loaded, 2, tmp_path / "gen", seed=3)
    again = sample(loaded, 2, tmp_path / "gen2", seed=3)
    assert [p.read_bytes() for p in wavs] == [p.read_bytes() for p in again]
    files = sorted(sounds.iterdir())
    out = reconstruct(loaded, files[0], tmp_path / "recon.wav")
    assert out.stat().st_size > 44
    steps_out = interpolate(loaded, files[0], files[1], 3, tmp_path / "interp")
    assert len(steps_out) == 3


GAIN_MODEL = {"latent_dim": 16, "latent_global": 3, "chunk_gain": True, "latent_frames": 4}


@pytest.mark.parametrize(
    ("cancel_at", "model"),
    [(5, {}), (8, {}), (5, GAIN_MODEL)],
    ids=["mid-epoch", "end-of-epoch", "gain-model"],
)
def test_resume_after_cancel_is_exact(
    sounds: Path, tmp_path: Path, cancel_at: int, model: dict[str, object]
) -> None:
    cfg = tiny_config(epochs=3, **model)
    report = inspect_audio(sounds)
    full = Recorder()
    train(cfg, report, tmp_path / "full", emit=full)

    first = Recorder(cancel_at=cancel_at)
    cancelled = train(cfg, report, tmp_path / "b", emit=first, cancel=first.token)
    assert cancelled.status == "cancelled"
    assert max(first.losses) == cancel_at
    assert cancelled.last_checkpoint is not None
    ckpt = load_checkpoint(cancelled.last_checkpoint)
    assert ckpt["global_step"] == cancel_at + 1

    rest = Recorder()
    resumed = train(cfg, report, tmp_path / "b", emit=rest, resume_from=cancelled.last_checkpoint)
    assert resumed.status == "completed"
    assert min(rest.losses) == cancel_at + 1
    combined = {**first.losses, **rest.losses}
    assert combined.keys() == full.losses.keys()
    for step, loss in full.losses.items():
        assert combined[step] == pytest.approx(loss, abs=1e-6), step


def _state(cfg: TrainingConfig) -> TrainState:
    torch.manual_seed(0)
    model = ConvVAE(**cfg.model_kwargs())
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate)
    return TrainState(
        model=model,
        optimizer=opt,
        lr_schedule=LRSchedule(cfg.learning_rate, 100, 0, "constant"),
        kl=KLSchedule.from_config(cfg, 10),
        config=cfg,
        device=torch.device("cpu"),
    )


def test_poisoned_batch_skips_backward_step_and_schedule() -> None:
    cfg = tiny_config()
    state = _state(cfg)
    batches = [torch.rand(2, 1, cfg.n_mels, cfg.n_frames) for _ in range(4)]
    batches[2][0, 0, 0, 0] = float("nan")
    rec = Recorder()
    before = {k: v.clone() for k, v in state.model.state_dict().items()}
    outcome = train_epoch(state, batches, steps_per_epoch=4, emit=rec, cancel=CancelToken())
    assert outcome == "completed"
    skipped = [e.metrics["train/skipped"] for e in rec.of(StepMetrics)]
    assert skipped == [0.0, 0.0, 1.0, 0.0]
    assert state.skipped_total == 1
    assert state.epoch_skipped == 1
    assert state.lr_schedule.step_count == 3  # the scheduler step was skipped too
    adam_steps = {int(s["step"]) for s in state.optimizer.state.values()}
    assert adam_steps == {3}
    assert [e.code for e in rec.of(WarningEvent)] == ["nan_loss"]
    after = state.model.state_dict()
    assert all(torch.isfinite(v).all() for v in after.values())
    assert any(not torch.equal(after[k], before[k]) for k in before)  # the good steps did update


@pytest.mark.parametrize("scale", [1e-3, 0.05, 100.0])
def test_clipping_on_the_host_is_clip_grad_norm_bit_for_bit(scale: float) -> None:
    """The engine skips clip_grad_norm_'s multiply-by-1.0 when the norm is under the limit
    (bench_engine.py overhead); the gradients must be exactly torch's, clipped or not."""
    torch.manual_seed(0)
    ours, theirs = torch.nn.Linear(12, 20), torch.nn.Linear(12, 20)
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        a.grad = torch.randn_like(a) * scale
        b.grad = a.grad.clone()
    norm = torch.nn.utils.clip_grad_norm_(theirs.parameters(), 1.0, foreach=True)
    assert _clip_on_host(ours, 1.0)
    assert (float(norm) > 1.0) == (scale == 100.0)  # both branches are taken
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert a.grad is not None
        assert b.grad is not None
        assert torch.equal(a.grad, b.grad)
    ours.weight.grad = torch.full_like(ours.weight, math.inf)
    assert not _clip_on_host(ours, 1.0)  # a non-finite norm skips the step


def test_divergence_rolls_back_then_fails_without_saving_nan(sounds: Path, tmp_path: Path) -> None:
    cfg = tiny_config(
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
    lrs = [e.metrics["lr"] for e in rec.of(StepMetrics)]
    assert min(lrs) == pytest.approx(1e12 / 4)  # halved once per rollback
    for info in list_checkpoints(tmp_path / "run" / "checkpoints"):
        state = load_checkpoint(info.path)
        assert all(torch.isfinite(v).all() for v in state["model_state"].values())


def test_runner_cancel_writes_checkpoint_within_a_batch(sounds: Path, tmp_path: Path) -> None:
    cfg = tiny_config(epochs=50)
    saved = threading.Event()
    seen_step = threading.Event()

    def watch(event: Event) -> None:
        if isinstance(event, StepMetrics) and event.global_step >= 2:
            seen_step.set()
        if isinstance(event, CheckpointSaved) and event.reason == "cancel":
            saved.set()

    runner = TrainingRunner(AudioTask(), cfg, sounds, tmp_path / "run", subscribers=[watch])
    runner.start()
    assert seen_step.wait(60)
    t0 = time.perf_counter()
    runner.cancel()
    assert saved.wait(30)
    latency = time.perf_counter() - t0
    result = runner.wait(30)
    assert result is not None
    assert result.status == "cancelled"
    assert result.epochs_completed < 50
    assert latency < 5.0, f"cancel took {latency:.2f} s"
    assert runner.status == "cancelled"
    # a corrupt newest checkpoint: resume falls back to the newest valid one
    newest = list_checkpoints(tmp_path / "run" / "checkpoints")[-1].path
    newest.write_bytes(newest.read_bytes()[:100])
    runner.resume()
    runner.cancel(timeout=60)
    assert runner.resumed_from is not None
    assert runner.resumed_from != newest


def test_retention_keeps_latest_and_best(sounds: Path, tmp_path: Path) -> None:
    cfg = tiny_config(epochs=5, keep_last_checkpoints=2)
    train(cfg, sounds, tmp_path / "run")
    infos = list_checkpoints(tmp_path / "run" / "checkpoints")
    assert 2 <= len(infos) <= 3
    assert infos[-1].reason == "final"


@pytest.mark.slow
def test_real_audio_tiny_preset_then_generate(tmp_path: Path) -> None:
    folder = require(SONIC_PI)
    task = AudioTask()
    report = task.inspect(folder)
    assert len(report.files) > 100
    # tiny preset, 2 epochs; one clean copy per chunk keeps this real run to about a minute
    cfg = task.adaptive_config(
        report,
        "cpu",
        "tiny",
        epochs=2,
        preview_every=0,
        augmentation_expansion=1,
        chunk_hop_seconds="none",
        model_width=8,
        batch_size=16,
    )
    result = train(cfg, report, tmp_path / "run")
    assert result.status == "completed"
    assert result.epochs_completed == 2
    wavs = sample(load_model(tmp_path / "run"), 2, tmp_path / "gen")
    assert len(wavs) == 2
    assert all(p.stat().st_size > 1000 for p in wavs)


def test_tensorboard_logs_scalars_and_preview_audio(sounds: Path, tmp_path: Path) -> None:
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="tensorboard is an optional extra",
    )
    cfg = tiny_config(epochs=1, tensorboard=True, preview_every=1, preview_count=1)
    train(cfg, sounds, tmp_path / "run")
    acc = event_accumulator.EventAccumulator(
        str(tmp_path / "run" / "tensorboard"), size_guidance={"audio": 0, "scalars": 0}
    )
    acc.Reload()
    tags = acc.Tags()
    assert {"train/loss", "kl/beta", "epoch/val/loss"} <= set(tags["scalars"])
    assert any(tag.startswith("preview/") for tag in tags["audio"])


def test_resume_with_a_config_that_builds_another_model_fails_clearly(
    sounds: Path, tmp_path: Path
) -> None:
    done = train(tiny_config(epochs=1), sounds, tmp_path / "run")
    other = tiny_config(epochs=2, latent_layout="flat")
    with pytest.raises(CheckpointError, match="differs from the one this config builds"):
        train(other, sounds, tmp_path / "again", resume_from=done.last_checkpoint)
    assert not (tmp_path / "again" / "export" / "best.pt").exists()


def test_best_epoch_follows_the_smoothed_validation_curve() -> None:
    import math
    from types import SimpleNamespace

    from smalltrain.tasks.audio.training.train import _improved

    cfg = tiny_config(epochs=100, monitor="val/sc", val_smoothing_steps=20)
    state = SimpleNamespace(best_score=math.inf, best_epoch=-1, bad_epochs=0, epoch=0,
                            smoothed_score=math.nan)  # fmt: skip
    run = SimpleNamespace(config=cfg, state=state, steps_per_epoch=10)
    # a falling curve with one lucky epoch (3) that a split of a few chunks can give
    curve = [1.0, 0.9, 0.8, 0.3, 0.7, 0.6, 0.55, 0.5, 0.5, 0.5]
    for epoch, value in enumerate(curve):
        state.epoch = epoch
        metrics = {"val/sc": value}
        _improved(run, metrics)  # type: ignore[arg-type]
        assert metrics["val/sc_smoothed"] == state.smoothed_score
    assert state.best_epoch == 9  # raw, epoch 3 would have been the best
    assert state.best_score > 0.5


def test_a_run_saved_before_the_temporal_layout_resumes(sounds: Path, tmp_path: Path) -> None:
    first = train(tiny_config(epochs=1, latent_layout="flat"), sounds, tmp_path / "run")
    assert first.last_checkpoint is not None
    saved = load_checkpoint(first.last_checkpoint)["config"]
    assert "fit_watch" in load_checkpoint(first.last_checkpoint)  # the verdict resumes too
    del saved["latent_layout"], saved["latent_frames"]  # as an older smalltrain wrote it
    cfg = TrainingConfig.from_dict({**saved, "epochs": 2})
    resumed = train(cfg, sounds, tmp_path / "run", resume_from=first.last_checkpoint)
    assert resumed.status == "completed"
    assert resumed.epochs_completed == 2
    assert resumed.best_checkpoint is not None
    assert load_model(resumed.best_checkpoint).model.layout == "flat"


def test_a_run_that_cannot_learn_emits_the_underfitting_warning(
    sounds: Path, tmp_path: Path
) -> None:
    """Through ``train``: a learning rate too small to move the weights keeps training SC above
    PCA's, and after half the run (it is shorter than 1,000 steps) the warning is emitted."""
    cfg = tiny_config(epochs=6, learning_rate=1e-9)
    rec = Recorder()
    train(cfg, sounds, tmp_path / "run", emit=rec)
    epochs = [e.metrics for e in rec.of(EpochMetrics)]
    assert all(m["train/sc"] > m["pca/sc"] for m in epochs)
    warnings = [e for e in rec.of(WarningEvent) if e.code == "underfitting"]
    assert warnings, [e.code for e in rec.of(WarningEvent)]
    assert "the model underfits" in warnings[0].message
    assert warnings[0].epoch is not None
    assert warnings[0].epoch >= 2  # not before half the run
