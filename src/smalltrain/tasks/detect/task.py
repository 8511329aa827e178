"""``DetectTask``: the engine's Task protocol for Ultralytics YOLO detection.

``train(ctx)`` is the original YOLO training wrapper. It makes Ultralytics offline-safe, inspects
the dataset and hands Ultralytics a resolved copy in the run dir, then runs ``YOLO.train`` with
absolute ``project``/``name`` under ``ctx.run_dir / "ultralytics"`` and its console output in
``ctx.run_dir / "ultralytics.log"``. Progress arrives as engine events (see ``callbacks``).

Run-dir layout: ``dataset/`` (resolved copy), ``ultralytics/train/`` (Ultralytics' own run:
``weights/last.pt``, ``weights/best.pt``, ``results.csv``, ``args.yaml``), ``export/best.pt``
(the stripped model to register), ``results/`` (the detection results of best.pt, see
``results``; registered with the model), ``ultralytics.log``.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from smalltrain import paths
from smalltrain.engine.context import JobContext, ResultStatus, ResumePoint, TrainResult
from smalltrain.engine.devices import resolve_device
from smalltrain.engine.events import LogEvent, TrainingFinished, WarningEvent
from smalltrain.engine.plain import plain
from smalltrain.engine.ptinfo import peek
from smalltrain.engine.resources import apply_gpu_memory_cap
from smalltrain.engine.seen import SEEN_DIR
from smalltrain.errors import ConfigError, NotResumable
from smalltrain.tasks.detect import offline
from smalltrain.tasks.detect.callbacks import (
    CancelGuard,
    Cancelled,
    ProgressMonitor,
    normalise_metrics,
    redirect_output,
)
from smalltrain.tasks.detect.config import FIELD_HELP, TrainingConfig
from smalltrain.tasks.detect.finetune import continue_config
from smalltrain.tasks.detect.inspect import DetectionReport, inspect_dataset
from smalltrain.tasks.detect.presets import build_config, config_notes

__all__ = ["DetectTask", "check_resumable", "home_for", "last_checkpoint"]

RUN_NAME = "train"


def home_for(ctx: JobContext) -> Path:
    """The smalltrain home of a job (``ctx.cache_dir`` is ``<home>/cache``)."""
    return ctx.cache_dir.parent if ctx.cache_dir is not None else paths.home()


def last_checkpoint(run_dir: Path) -> Path:
    """Where a detection run keeps its resumable state: Ultralytics' ``last.pt``."""
    return Path(run_dir) / "ultralytics" / RUN_NAME / "weights" / "last.pt"


def _peek(path: Path) -> dict[str, Any]:
    # peek reads the pickle with every class stubbed: no torch, no Ultralytics, no code from
    # the file runs (an Ultralytics checkpoint cannot load with weights_only=True).
    try:
        ckpt = peek(path)
    except (OSError, ValueError) as exc:
        raise NotResumable(f"{path}: cannot read this checkpoint ({exc}).") from exc
    if not isinstance(ckpt, dict):
        raise NotResumable(f"{path}: not an Ultralytics training checkpoint.")
    return ckpt


def check_resumable(path: Path) -> int:
    """Return the last finished epoch of a resumable Ultralytics last.pt.

    Raises:
        NotResumable: missing file, no optimizer state, epoch < 0, or the run already finished.
    """
    path = Path(path)
    if not path.is_file():
        raise NotResumable(
            f"{path}: no such checkpoint; the run stopped before it saved one, so there is "
            "nothing to resume."
        )
    ckpt = _peek(path)
    epoch = int(ckpt.get("epoch", -1))
    epochs = int((ckpt.get("train_args") or {}).get("epochs", 0))
    if epoch < 0 or ckpt.get("optimizer") is None:
        raise NotResumable(
            f"{path}: this run already finished (its last.pt was stripped of optimizer state), "
            "so there is nothing to resume."
        )
    if epochs and epoch + 1 >= epochs:
        raise NotResumable(f"{path}: this run already finished all {epochs} epochs.")
    return epoch


class DetectTask:
    """Fine-tune or train an Ultralytics YOLO detector (the ``detect`` task)."""

    name = "detect"
    #: Imported once by the warm start's server (``service.execution.warm``). Not Ultralytics:
    #: it reads its settings folder at import, which ``offline`` sets in the job's process.
    warm_modules = ("torchvision",)
    #: Config fields that name a file this task loads with pickle (code): the weights rule
    #: of ``service.weights.check_weights`` applies to them before a job is queued.
    weights_fields = ("base_model",)
    #: What sweeps judge trials by: validation mAP50-95, higher is better.
    sweep_metric = ("val/mAP50-95", "max")

    def inspect(self, path: Path) -> DetectionReport:
        """Validate and summarise a YOLO dataset (a data.yaml or its folder)."""
        return inspect_dataset(Path(path))

    def adaptive_config(
        self, report: Any, device: str, preset: str = "auto", **overrides: Any
    ) -> TrainingConfig:
        """A config for this dataset and device from a preset; user overrides win."""
        return build_config(report, device, preset, **overrides)

    def config_from_dict(self, data: Mapping[str, Any]) -> TrainingConfig:
        """Rebuild a validated config from ``TrainingConfig.to_dict`` output."""
        return TrainingConfig.from_dict(data)

    def resume_point(self, run_dir: Path) -> ResumePoint:
        """The run's Ultralytics last.pt, if it can resume (see ``check_resumable``).

        Raises:
            NotResumable: no last.pt, or the run already finished; the message says why.
        """
        last = last_checkpoint(run_dir)
        epoch = check_resumable(last)
        epochs = int((_peek(last).get("train_args") or {}).get("epochs", 0))
        return ResumePoint(last, f"resuming from last.pt after epoch {epoch + 1} of {epochs}")

    def config_notes(self, config: TrainingConfig, overrides: Mapping[str, Any]) -> list[str]:
        """Notes on choices the user did not make (training from scratch without weights)."""
        return config_notes(config, overrides)

    def field_help(self) -> Mapping[str, str]:
        """One line per config field (``smalltrain config show detect``)."""
        return FIELD_HELP

    def continue_config(
        self, previous: TrainingConfig, weights: Path, extra_epochs: int, **overrides: Any
    ) -> TrainingConfig:
        """A fine-tune config that continues from finished weights for N more epochs."""
        return continue_config(previous, weights, extra_epochs, **overrides)

    def train(self, ctx: JobContext) -> TrainResult:
        """Train to completion or cancellation; blocks. See the module docstring."""
        config = ctx.config
        if isinstance(config, Mapping):
            config = TrainingConfig.from_dict(config)
        if not isinstance(config, TrainingConfig):
            raise ConfigError("config", type(config).__name__, "must be a detection TrainingConfig")
        home = home_for(ctx)
        offline.apply(home)
        run_dir = Path(ctx.run_dir).resolve()
        run_dir.mkdir(parents=True, exist_ok=True)
        save_dir = run_dir / "ultralytics" / RUN_NAME
        if ctx.cancel.is_set():
            return self._result(ctx, config, None, None, save_dir, status="cancelled")
        report = inspect_dataset(Path(ctx.dataset_path))
        if report.problems or report.warnings:
            ctx.emit(WarningEvent("dataset_problems", report.issues(max_problems=10)))
        data_yaml = report.build_resolved(run_dir / "dataset")
        device = resolve_device(config.device or ctx.device)
        cap = ctx.limits.max_gpu_memory_percent or config.max_gpu_memory_percent
        capped, why = apply_gpu_memory_cap(cap, device)
        if capped:
            ctx.emit(LogEvent(why))
        with redirect_output(run_dir / "ultralytics.log"):
            # Building the model logs too ("no model scale passed..."): into the log with it.
            model, kwargs, start = self._model_and_args(
                ctx, config, home, data_yaml, save_dir, device
            )
            resumed = str(ctx.resume_from) if ctx.resume_from else None
            monitor = ProgressMonitor(ctx.emit, resumed, ctx.cancel)
            guard = CancelGuard(ctx.cancel, monitor)
            monitor.attach(model)
            guard.attach(model)
            status: ResultStatus = "completed"
            try:
                model.train(**kwargs)
            except Cancelled:
                status = "cancelled"
            finally:
                _close_loaders(getattr(model, "trainer", None))
        seen = getattr(getattr(model, "trainer", None), "seen", None)
        if seen is not None and seen.seconds:
            ctx.emit(
                LogEvent(
                    f"drew the first training batches into {seen.folder} in {seen.seconds:.2f} s"
                )
            )
        done = max(start, (guard.saved_epoch + 1) if guard.saved_epoch is not None else 0)
        return self._result(ctx, config, report, model, save_dir, status, monitor, done)

    def _model_and_args(
        self,
        ctx: JobContext,
        config: TrainingConfig,
        home: Path,
        data_yaml: Path,
        save_dir: Path,
        device: str,
    ) -> tuple[Any, dict[str, Any], int]:
        from ultralytics import YOLO

        from smalltrain.tasks.detect.trainer import trainer_for

        # plots=False: nobody reads Ultralytics' per-epoch plots (labels, curves, val batches);
        # the trainer draws only the first training batches, into <run>/seen/.
        common = {
            "data": str(data_yaml),
            "device": _ul_device(device),
            "plots": False,
            "trainer": trainer_for(config.val_every, Path(ctx.run_dir).resolve() / SEEN_DIR),
        }
        if ctx.resume_from is not None:
            epoch = check_resumable(Path(ctx.resume_from))
            ctx.emit(LogEvent(f"resuming from {ctx.resume_from} after epoch {epoch + 1}"))
            kwargs = {
                **common,
                "resume": True,
                "save_dir": str(save_dir),
                "workers": config.workers,
            }
            return YOLO(str(ctx.resume_from)), kwargs, epoch + 1
        base = offline.resolve_base_model(config.base_model, home)
        args = config.ultralytics_args()
        if config.from_scratch and config.freeze_layers:
            ctx.emit(
                WarningEvent(
                    "freeze_ignored",
                    f"freeze_layers={config.freeze_layers} ignored: training from scratch "
                    f"({config.base_model}) has no pretrained backbone to keep.",
                )
            )
            args["freeze"] = None
        kwargs = {
            **args,
            **common,
            "project": str(save_dir.parent),
            "name": save_dir.name,
            "exist_ok": True,
        }
        return YOLO(base), kwargs, 0

    def _result(
        self,
        ctx: JobContext,
        config: TrainingConfig,
        report: DetectionReport | None,
        model: Any,
        save_dir: Path,
        status: ResultStatus,
        monitor: ProgressMonitor | None = None,
        epochs_done: int = 0,
    ) -> TrainResult:
        weights_dir = save_dir / "weights"
        last, best = weights_dir / "last.pt", weights_dir / "best.pt"
        history = _history(save_dir, monitor)
        final = dict(monitor.final) if monitor else {}
        exported = None
        results_missing = ""
        if status == "completed" and best.exists():
            exported = Path(ctx.run_dir).resolve() / "export" / "best.pt"
            exported.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(best, exported)  # final_eval already stripped best.pt
            results_missing = _write_results(ctx, model)
        if history:
            epochs_done = max(epochs_done, int(history[-1]["epoch"]) + 1)
        metrics = _summary(history, final)
        trainer = getattr(model, "trainer", None)
        ul_args = plain(vars(trainer.args)) if trainer is not None else {}
        per_class = dict(monitor.per_class) if monitor else {}
        extra = {
            "config_yaml": {"config": config.to_dict(), "ultralytics": ul_args},
            "metrics": {"final": metrics, "per_class": per_class, "history": history},
            "results_missing": results_missing,
            "base_model": config.base_model,
            "dataset_snapshot": report.snapshot() if report else "",
            "dataset_fingerprint": report.fingerprint if report else "",
        }
        artifacts = {
            k: str(v)
            for k, v in {
                "results_csv": save_dir / "results.csv",
                "ultralytics_log": Path(ctx.run_dir) / "ultralytics.log",
                "data_yaml": Path(ctx.run_dir) / "dataset" / "data.yaml",
            }.items()
            if v.exists()
        }
        global_step = monitor.global_step if monitor else 0
        ctx.emit(
            TrainingFinished(
                status=status,
                epochs_completed=epochs_done,
                global_step=global_step,
                best_checkpoint=str(best) if best.exists() else None,
                last_checkpoint=str(last) if last.exists() else None,
                metrics=metrics,
            )
        )
        return TrainResult(
            status=status,
            epochs_completed=epochs_done,
            global_step=global_step,
            run_dir=Path(ctx.run_dir),
            best_checkpoint=best if best.exists() else None,
            last_checkpoint=last if last.exists() else None,
            weights=exported,
            metrics=metrics,
            headline_metric="best_map50_95",
            headline_value=metrics.get("best_map50_95"),
            headline_mode="max",
            artifacts=artifacts,
            extra=extra,
        )


def _write_results(ctx: JobContext, model: Any) -> str:
    """The detection results of best.pt's final evaluation into ``<run>/results/`` (kept with
    the model when it is registered). Returns "" or why they are missing: a failure here is a
    warning, never the job's failure."""
    from smalltrain.tasks.detect.results import RESULTS_DIR, write_results

    validator = getattr(getattr(model, "trainer", None), "validator", None)
    try:
        if validator is None:
            raise ValueError("training ran no final evaluation")
        data = write_results(validator, Path(ctx.run_dir) / RESULTS_DIR, source="best.pt")
    except Exception as exc:  # any error: the trained model is still good
        why = f"detection results not computed ({type(exc).__name__}: {exc})"
        ctx.emit(WarningEvent("results_missing", why))
        return why
    worst = len(data["worst"])
    ctx.emit(LogEvent(f"detection results in {RESULTS_DIR}/ ({worst} worst images, "
                      f"{data['seconds']:.1f} s)"))  # fmt: skip
    return ""


def _history(save_dir: Path, monitor: ProgressMonitor | None) -> list[dict[str, float]]:
    """One row per epoch: results.csv (every attempt of the run) with our events' extra keys.

    An epoch redone after a cancel appears once, as its last run.
    """
    live = {h["epoch"]: h for h in (monitor.history if monitor else [])}
    rows = _read_results(save_dir / "results.csv") or list(live.values())
    by_epoch = {row["epoch"]: {**row, **live.get(row["epoch"], {})} for row in rows}
    return [by_epoch[e] for e in sorted(by_epoch)]


def _summary(history: list[dict[str, float]], final: dict[str, float]) -> dict[str, float]:
    """The run's headline numbers: the final evaluation of best.pt, the best epoch (by
    mAP50-95, Ultralytics' fitness, which is how best.pt was chosen) and that epoch's mAPs.

    ``best_map50_95`` (what ranks models) and ``best_map50`` (the registry's original field) are
    best.pt's final evaluation, or the best epoch's values when there was none.
    """
    metrics = dict(final)
    scored = [h for h in history if math.isfinite(h.get("val/mAP50-95", math.nan))]
    if scored:
        best = max(scored, key=lambda h: h["val/mAP50-95"])
        metrics["best_epoch"] = float(best["epoch"])
        for key in ("val/mAP50", "val/mAP50-95"):
            if key in best:
                metrics[key] = best[key]
    for ours, final_key, epoch_key in (
        ("best_map50_95", "final/mAP50-95", "val/mAP50-95"),
        ("best_map50", "final/mAP50", "val/mAP50"),
    ):
        value = final.get(final_key, metrics.get(epoch_key))
        if value is not None:
            metrics[ours] = value
    return metrics


def _ul_device(device: str) -> str:
    """Our device string to Ultralytics' ("cuda:1" -> "1", "cuda" -> "0")."""
    if device.startswith("cuda"):
        return device.split(":", 1)[1] if ":" in device else "0"
    return device


def _close_loaders(trainer: Any) -> None:
    """Shut dataloader workers down (Ultralytics only does this at the end of a full run)."""
    if trainer is None:
        return
    for name in ("train_loader", "test_loader"):
        loader = getattr(trainer, name, None)
        if loader is not None and hasattr(loader, "close"):
            loader.close()


def _read_results(path: Path) -> list[dict[str, float]]:
    """Ultralytics' results.csv (every attempt of the run) as our per-epoch history.

    An epoch that was not validated (``val_every``) has NaN validation columns there; they are
    left out, as in its live event, so the history never shows numbers that were not measured.
    """
    import csv

    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    out = []
    for row in rows:
        values = normalise_metrics({k.strip(): v for k, v in row.items() if k})
        values = {k: v for k, v in values.items() if math.isfinite(v)}
        values["epoch"] = values["epoch"] - 1  # results.csv counts epochs from 1
        out.append(values)
    return out
