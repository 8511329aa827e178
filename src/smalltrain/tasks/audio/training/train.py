"""The audio training orchestrator: ``train`` = setup → loop → finalize.

Setup (the ``Run`` and the run folder's layout) is ``run.py``; one epoch's body is ``epoch.py``;
checkpoints, rollback and the exported best model are ``checkpointing.py``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from smalltrain.engine.checkpoints import load_checkpoint, manage_checkpoints
from smalltrain.engine.context import CancelToken, ResultStatus, TrainResult
from smalltrain.engine.events import (
    EpochMetrics,
    Event,
    LogEvent,
    TrainingFinished,
    TrainingStarted,
    WarningEvent,
)
from smalltrain.errors import CheckpointError
from smalltrain.tasks.audio.config import TrainingConfig
from smalltrain.tasks.audio.data.dataset import AudioTrainingDataset
from smalltrain.tasks.audio.data.io import DatasetReport
from smalltrain.tasks.audio.training.alerts import fit_warnings
from smalltrain.tasks.audio.training.checkpointing import (
    add_sequence_prior,
    export_best,
    fit_run_prior,
    restore_run,
    rollback,
    save_run,
)
from smalltrain.tasks.audio.training.epoch import epoch_train_metrics, train_epoch, validate_epoch
from smalltrain.tasks.audio.training.run import Run, setup_run
from smalltrain.tasks.audio.training.seen import write_seen_chunks

# --- the loop's helpers ---


def _loader(ds: AudioTrainingDataset, cfg: TrainingConfig, sampler: Any = None) -> DataLoader[Any]:
    return DataLoader(
        ds,
        batch_size=cfg.batch_size,
        sampler=sampler,
        shuffle=False,
        num_workers=cfg.num_workers,
        # its own generator, so building a loader never draws from the global torch RNG
        generator=torch.Generator(),
        persistent_workers=False,
    )


def _smoothed(run: Run, score: float) -> float:
    """The monitor's exponential moving average with a time constant of
    ``val_smoothing_steps`` optimizer steps (the score itself when that is 0)."""
    s, tau = run.state, run.config.val_smoothing_steps
    if not math.isfinite(score):
        return score
    if tau > 0 and math.isfinite(s.smoothed_score):
        keep = math.exp(-run.steps_per_epoch / tau)
        score = keep * s.smoothed_score + (1.0 - keep) * score
    s.smoothed_score = score
    return score


def _improved(run: Run, metrics: dict[str, float]) -> bool:
    cfg = run.config
    score = metrics.get(cfg.monitor, metrics.get("val/loss", math.nan))
    if cfg.val_smoothing_steps:
        score = metrics[f"{cfg.monitor}_smoothed"] = _smoothed(run, score)
    s = run.state
    if math.isfinite(score) and score < s.best_score - cfg.early_stopping_min_delta:
        s.best_score, s.best_epoch, s.bad_epochs = score, s.epoch, 0
        return True
    s.bad_epochs += 1
    return False


def _render_previews(run: Run, epoch: int) -> None:
    if run.config.preview_count > 0:  # fitting the prior encodes the training set: skip it
        run.previews.render(run.state.model, epoch, run.history.emit, fit_run_prior(run))


def _write_seen(run: Run, emit: Callable[[Event], None]) -> None:
    """A few augmented training chunks beside their originals, in ``seen/`` (``seen.py``)."""
    t0 = time.perf_counter()
    try:
        path = write_seen_chunks(run.train_ds, run.spectrogram, run.run_dir)
    except OSError as exc:  # a picture of the data is not worth failing the run for
        emit(WarningEvent(code="seen_failed", message=f"could not write seen/: {exc}"))
        return
    took = time.perf_counter() - t0
    emit(LogEvent(message=f"wrote what the model sees to {path.parent} in {took:.2f} s"))


def _epoch_warnings(run: Run, metrics: dict[str, float], emit: Callable[[Event], None]) -> None:
    """The overfitting / underfitting verdict (``alerts.py``)."""
    fit_warnings(run, metrics, emit)


# --- train ---------------------------------------------------------------------------------------


def _resume_or_start(run: Run, resume_from: Path | None, emit: Callable[[Event], None]) -> None:
    if resume_from is None:
        # a fresh model starts at the training set's mean level per mel band
        model = run.state.model
        model.init_output_level(model.mean_level(run.train_ds.mels))
        save_run(run, "initial", emit)  # the first rollback target
        return
    ckpt = load_checkpoint(resume_from)
    if "model_state" not in ckpt or "optimizer_state" not in ckpt:
        raise CheckpointError(
            f"{resume_from}: not a resumable audio checkpoint (no model/optimizer state); "
            "resume from a file in the run's checkpoints/ folder"
        )
    if ckpt.get("dataset_fingerprint") != run.report.fingerprint:
        emit(
            WarningEvent(
                code="dataset_changed",
                message="the dataset changed since this checkpoint was written; resuming anyway",
            )
        )
    restore_run(run, ckpt)


def train(
    config: TrainingConfig,
    data: DatasetReport | str | Path,
    run_dir: str | Path,
    *,
    emit: Callable[[Event], None] | None = None,
    cancel: CancelToken | None = None,
    resume_from: str | Path | None = None,
    cache_dir: str | Path | None = None,
) -> TrainResult:
    """Train a ConvVAE on a folder of audio; blocks until done or cancelled.

    Args:
        config: a validated audio TrainingConfig.
        data: a folder of audio (scanned with ``scan_folder``) or its DatasetReport.
        run_dir: where checkpoints, previews and the exported model go.
        emit: receives every event (step and epoch metrics, warnings, checkpoints, previews).
        cancel: checked every batch; a cancel writes a checkpoint at once and returns.
        resume_from: a checkpoint of this run to continue from, exactly.
        cache_dir: spectrogram cache folder.

    Raises:
        DatasetError: no usable audio. TrainingDiverged: NaN/inf survived every rollback.
    """
    emit = emit or (lambda event: None)
    cancel = cancel if cancel is not None else CancelToken()
    run_dir = Path(run_dir)
    resume = Path(resume_from) if resume_from is not None else None
    data = data if isinstance(data, DatasetReport) else Path(data)
    run = setup_run(config, data, run_dir, Path(cache_dir) if cache_dir else None, emit)
    _resume_or_start(run, resume, emit)
    # beside the first steps, on its own thread: the loop never waits for it until the end
    seen = threading.Thread(target=_write_seen, args=(run, emit), name="seen", daemon=True)
    if resume is None:
        seen.start()
    tb_close = _maybe_tensorboard(run)
    try:
        return _loop(run, resume, cancel)
    finally:
        if seen.is_alive():
            seen.join()
        tb_close()


def _started(run: Run, resume: Path | None) -> TrainingStarted:
    s = run.state
    return TrainingStarted(
        total_epochs=run.config.epochs,
        steps_per_epoch=run.steps_per_epoch,
        start_epoch=s.epoch,
        start_step=s.step_in_epoch,
        resumed_from=str(resume) if resume else None,
        device=str(s.device),
        info={
            "train_chunks": run.train_ds.n_chunks,
            "val_chunks": run.val_ds.n_chunks,
            "split": run.split.strategy,
        },
    )


def _loop(run: Run, resume: Path | None, cancel: CancelToken) -> TrainResult:
    cfg, s, emit = run.config, run.state, run.history.emit
    emit(_started(run, resume))
    status: ResultStatus = "completed"
    while s.epoch < cfg.epochs:
        if s.step_in_epoch == 0:
            s.start_epoch()
        run.sampler.set_epoch(s.epoch)
        run.sampler.set_start(s.step_in_epoch * cfg.batch_size)
        t0 = time.perf_counter()
        outcome = train_epoch(
            s,
            _loader(run.train_ds, cfg, run.sampler),
            steps_per_epoch=run.steps_per_epoch,
            emit=emit,
            cancel=cancel,
        )
        if outcome == "diverging":
            rollback(run, emit)
            continue
        if outcome == "cancelled":
            status = "cancelled"
            break
        if _end_epoch(run, t0, resume):
            break
        if cancel.is_set():
            status = "cancelled"
            break
    return _finalize(run, status, resume)


def _end_epoch(run: Run, t0: float, resume: Path | None) -> bool:
    """Validate, report, export, preview and checkpoint a finished epoch; True = stop early."""
    cfg, s, emit = run.config, run.state, run.history.emit
    metrics = epoch_train_metrics(s)
    recon: list[torch.Tensor] = []
    metrics.update(validate_epoch(s, _loader(run.val_ds, cfg), emit=emit, keep=recon))
    if run.comparator is not None and recon:  # the model beside PCA of its own size
        metrics.update(run.comparator.compare_reconstructions(torch.cat(recon), run.val_ds.mels))
    metrics["time/epoch_s"] = time.perf_counter() - t0
    is_best = _improved(run, metrics)
    emit(EpochMetrics(epoch=s.epoch, total_epochs=cfg.epochs, metrics=metrics))
    _epoch_warnings(run, metrics, emit)
    if is_best:
        export_best(run)
    if cfg.preview_every and (s.epoch + 1) % cfg.preview_every == 0:
        _render_previews(run, s.epoch)
    s.epoch, s.step_in_epoch = s.epoch + 1, 0
    stop_early = (
        bool(cfg.early_stopping_patience)
        and s.bad_epochs >= cfg.early_stopping_patience
        and s.global_step >= cfg.early_stopping_min_steps
    )
    if s.epoch % cfg.checkpoint_every == 0 and s.epoch < cfg.epochs and not stop_early:
        save_run(run, "interval", emit)
        manage_checkpoints(
            run.ckpt_dir,
            keep_last=cfg.keep_last_checkpoints,
            monitor=cfg.monitor,
            protect=[resume] if resume else [],
        )
    if stop_early:
        message = f"{cfg.monitor} has not improved for {s.bad_epochs} epochs; stopping early"
        emit(WarningEvent(code="early_stop", message=message, epoch=s.epoch - 1))
    return stop_early


def _finalize(run: Run, status: ResultStatus, resume: Path | None) -> TrainResult:
    s, emit = run.state, run.history.emit
    last = save_run(run, "cancel" if status == "cancelled" else "final", emit)
    manage_checkpoints(
        run.ckpt_dir,
        keep_last=run.config.keep_last_checkpoints,
        monitor=run.config.monitor,
        protect=[resume] if resume else [],
    )
    best = run.export_path
    if not best.exists():
        best = export_best(run)
    if status == "completed":  # not on cancel: it would delay the stop; resume adds it
        add_sequence_prior(run)
    every = run.config.preview_every
    if status == "completed" and every and s.epoch % every != 0:  # not rendered yet
        _render_previews(run, max(s.epoch - 1, 0))
    summary = _summary_metrics(run)
    emit(
        TrainingFinished(
            status=status,
            epochs_completed=s.epoch,
            global_step=s.global_step,
            best_checkpoint=str(best),
            last_checkpoint=str(last),
            metrics=summary,
        )
    )
    return _result(run, status, best, last, summary)


def _result(
    run: Run, status: ResultStatus, best: Path, last: Path, summary: dict[str, float]
) -> TrainResult:
    s = run.state
    # The headline is the metric the best epoch was chosen by (the config's monitor), so
    # models rank the way their checkpoints were picked.
    monitor = run.config.monitor
    headline = summary.get("best_val_loss" if monitor == "val/loss" else monitor, math.nan)
    return TrainResult(
        status=status,
        epochs_completed=s.epoch,
        global_step=s.global_step,
        run_dir=run.run_dir,
        best_checkpoint=best,
        last_checkpoint=last,
        weights=best,
        metrics=summary,
        headline_metric="best_" + monitor.replace("/", "_"),
        headline_value=headline if math.isfinite(headline) else None,
        headline_mode="min",
        artifacts={"previews": str(run.run_dir / "previews"), "checkpoints": str(run.ckpt_dir)},
        extra={
            "history": run.history.state_dict()["epochs"],
            "best_epoch": s.best_epoch,
            "skipped_steps": s.skipped_total,
            "rollbacks": s.rollbacks,
            "dataset_snapshot": run.report.snapshot(),
            "dataset_fingerprint": run.report.fingerprint,
            "config": run.config.to_dict(),
            "base_model": "ConvVAE (from scratch)",
        },
    )


def _summary_metrics(run: Run) -> dict[str, float]:
    """The metrics of the exported (best) epoch, plus the best validation loss of the run."""
    epochs = run.history.state_dict()["epochs"]
    best = next(
        (e for e in epochs if e["epoch"] == run.state.best_epoch), epochs[-1] if epochs else {}
    )
    out = {k: float(v) for k, v in best.items() if isinstance(v, (int, float))}
    losses = [
        float(e["val/loss"]) for e in epochs if math.isfinite(float(e.get("val/loss", math.nan)))
    ]
    if losses:
        out["best_val_loss"] = min(losses)
    out["best_epoch"] = float(run.state.best_epoch)
    return out


def _maybe_tensorboard(run: Run) -> Callable[[], None]:
    if not run.config.tensorboard:
        return lambda: None
    from smalltrain.engine.tensorboard import TensorBoardLogger

    logger = TensorBoardLogger(run.run_dir / "tensorboard")
    unsubscribe = run.history.subscribe(logger)

    def close() -> None:
        unsubscribe()
        logger.close()

    return close
