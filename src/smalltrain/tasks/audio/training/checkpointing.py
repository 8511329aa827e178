"""A run's checkpoints: what one holds, saving, restoring, rolling back, exporting the best.

A checkpoint holds everything to resume exactly (model, optimizer, schedules, counters, RNG and
sampler state, metric history) and what it was trained on (config, dataset fingerprint, the
split's files). The exported model (``export/best.pt``) is the same payload stripped for
inference, with the epoch curve and the latent prior that ``generate`` samples.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from smalltrain.engine.checkpoints import (
    capture_rng_state,
    find_resumable,
    load_checkpoint,
    package_versions,
    restore_rng_state,
    save_checkpoint,
    strip_for_inference,
)
from smalltrain.engine.events import CheckpointSaved, Event, WarningEvent
from smalltrain.engine.fsutil import atomic_write
from smalltrain.errors import CheckpointError, TrainingDiverged
from smalltrain.tasks.audio.model.model import ConvVAE
from smalltrain.tasks.audio.model.prior import LatentPrior, fit_latent_prior
from smalltrain.tasks.audio.model.sequence import fit_sequence_prior
from smalltrain.tasks.audio.training.run import Run


def _file_entries(files: list[Any]) -> list[dict[str, str]]:
    return [{"rel": f.rel, "path": str(f.path), "fingerprint": f.fingerprint} for f in files]


def checkpoint_payload(run: Run) -> dict[str, Any]:
    """Everything to resume ``run`` exactly where it is, and what it was trained on."""
    s = run.state
    return {
        "model_args": s.model.init_args,
        "model_state": s.model.state_dict(),
        "config": run.config.to_dict(),
        "spectrogram": run.spectrogram.config.to_dict(),
        "optimizer_state": s.optimizer.state_dict(),
        "scheduler_state": s.lr_schedule.state_dict(),
        "kl_state": s.kl.state_dict(),
        "counters": s.counters(),
        "rng_state": capture_rng_state(),
        "sampler_state": run.sampler.state_dict(),
        "history": run.history.state_dict(),
        "fit_watch": run.fit.state_dict(),
        "dataset_fingerprint": run.report.fingerprint,
        "train_files": _file_entries(run.split.train),
        "val_files": _file_entries(run.split.val),
        "split_strategy": run.split.strategy,
    }


_DEVICE_FLAGS = ("fused", "foreach")  # AdamW implementation choices made per device


def restore_run(run: Run, ckpt: dict[str, Any]) -> None:
    """Put a run back exactly where ``ckpt`` was taken (mid-epoch included)."""
    s = run.state
    saved_args = ckpt.get("model_args")
    if saved_args is not None and saved_args != s.model.init_args:
        raise CheckpointError(
            f"the checkpoint's model ({saved_args}) differs from the one this config builds "
            f"({s.model.init_args}); resume with the config saved in the checkpoint (the job's "
            "own config, as `smalltrain resume` does), or start a new run"
        )
    s.model.load_state_dict(ckpt["model_state"])
    flags = [{k: g.get(k) for k in _DEVICE_FLAGS} for g in s.optimizer.param_groups]
    s.optimizer.load_state_dict(ckpt["optimizer_state"])
    # the saved groups carry the flags of the device they were saved on (a CPU checkpoint
    # resumed on CUDA would lose `fused`, and with it the on-device NaN skip): keep this run's
    for group, own in zip(s.optimizer.param_groups, flags, strict=True):
        group.update(own)
    s.lr_schedule.load_state_dict(ckpt["scheduler_state"])
    s.kl.load_state_dict(ckpt["kl_state"])
    s.load_counters(ckpt["counters"])
    run.sampler.load_state_dict(ckpt["sampler_state"])
    run.history.load_state_dict(ckpt["history"])
    run.fit.load_state_dict(ckpt.get("fit_watch") or {})  # absent before the verdict was kept
    restore_rng_state(ckpt["rng_state"])


def save_run(run: Run, reason: str, emit: Callable[[Event], None]) -> Path:
    """Write a resumable checkpoint to ``run.ckpt_dir`` and announce it; returns its path."""
    s = run.state
    run.sampler.set_epoch(s.epoch)
    run.sampler.set_start(s.step_in_epoch * run.config.batch_size)
    path = save_checkpoint(
        run.ckpt_dir,
        checkpoint_payload(run),
        epoch=s.epoch,
        global_step=s.global_step,
        metrics=run.history.last_epoch() if reason != "cancel" else {},
        reason=reason,
    )
    emit(CheckpointSaved(path=str(path), epoch=s.epoch, global_step=s.global_step, reason=reason))
    return path


def rollback(run: Run, emit: Callable[[Event], None]) -> None:
    """Reload the last good checkpoint with the learning rate halved, or give up."""
    s = run.state
    cfg = run.config
    rollbacks, lr_scale = s.rollbacks + 1, s.lr_scale * 0.5
    if rollbacks > cfg.max_rollbacks:
        raise TrainingDiverged(
            f"training diverged: the loss was NaN/inf for {cfg.nan_skip_limit} consecutive "
            f"steps, again after {cfg.max_rollbacks} rollbacks with the learning rate halved "
            f"each time. Lower learning_rate (now {cfg.learning_rate * s.lr_scale:.2e}, e.g. "
            f"--set learning_rate={cfg.learning_rate * lr_scale:.1e}) or check the audio."
        )
    found = find_resumable(run.ckpt_dir)
    if found is None:
        raise TrainingDiverged("training diverged before any checkpoint was written")
    path, ckpt = found
    skipped = s.skipped_total
    restore_run(run, ckpt)
    s.rollbacks, s.lr_scale, s.skipped_total = rollbacks, lr_scale, skipped
    emit(
        WarningEvent(
            code="rollback",
            message=f"{cfg.nan_skip_limit} non-finite steps in a row: rolled back to {path.name} "
            f"with the learning rate halved (rollback {rollbacks}/{cfg.max_rollbacks})",
            epoch=s.epoch,
        )
    )


def export_best(run: Run) -> Path:
    """Write the current model, stripped for inference, to ``run.export_path``."""
    path = run.export_path
    payload = strip_for_inference(checkpoint_payload(run))
    payload.update(
        {
            "format": 1,
            "versions": package_versions(),
            "epoch": run.state.epoch,
            "best_score": run.state.best_score,
            # per-step records are for resuming; the exported model keeps the epoch curve only
            "history": {"steps": [], "epochs": payload["history"]["epochs"]},
            # what `generate` samples from (see tasks/audio/model/prior.py)
            "latent_prior": fit_run_prior(run).state_dict(),
        }
    )
    atomic_write(path, lambda f: torch.save(payload, f))
    return path


def add_sequence_prior(run: Run) -> None:
    """Fit the sequence prior (``sequence.py``: what ``generate --duration`` draws from) for
    the exported model and store it in ``export/best.pt``. Done once, when training ends: it
    encodes every training file again, too slow to repeat at every new best epoch."""
    path = run.export_path
    if not path.is_file():
        return
    payload = load_checkpoint(path, map_location="cpu")
    model = ConvVAE.from_init_args(dict(payload["model_args"]))
    model.load_state_dict(payload["model_state"])
    model.eval()
    ds = run.train_ds
    prior = fit_sequence_prior(model, run.spectrogram, ds.waves, ds.chunk_samples,
                               from_onsets=run.config.material in ("onset", "mixed"))  # fmt: skip
    payload["sequence_prior"] = prior.state_dict()
    atomic_write(path, lambda f: torch.save(payload, f))


def fit_run_prior(run: Run) -> LatentPrior:
    """The Gaussian of the model's codes of the training chunks, what `generate` samples."""
    return fit_latent_prior(run.state.model, run.train_ds.mels)
