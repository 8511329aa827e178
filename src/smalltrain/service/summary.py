"""The end of a job in words, for every face: the best epoch and its headline metric (beside
PCA's for audio; mAP and the per-class table for detection), a plain verdict against the
baseline, the registered model and whether it became active (and why), what to run next. The
CLI prints it (``cli.summary``), the web UI shows it in the Job tab, ``--json`` and the API get
the dict. Light: no torch.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smalltrain.engine.jobs import JobStatus, TrainingJob
from smalltrain.engine.plain import fmt_number

if TYPE_CHECKING:
    from smalltrain.engine.events import TrainingFinished
    from smalltrain.service.manager import TrainingManager

__all__ = ["evaluation_verdict", "finished_event", "job_summary", "verdict"]

_PLOT = "metrics.png"


def evaluation_verdict(data: dict[str, Any], marked: bool = False) -> str:
    """``smalltrain evaluate``'s result against PCA in one line, for the CLI and the Use tab
    alike (``data`` is the evaluation's dict): no verdict when the evaluated files were in the
    model's training split (``marked``: the view marks them below), or when PCA does no better
    than silence on them."""
    model, pca = data["model"], data["baseline_pca"]
    scores = f"model SC {model['sc']:.3f}, PCA-{pca['k']} SC {pca['sc']:.3f}"
    trained = data.get("in_training") or []
    if trained:
        return (
            f"{scores}: no verdict. {len(trained)} of the files evaluated were in the model's "
            f"training split{' (marked below)' if marked else ''}, so these scores say how well "
            "it remembers, not how it does on new sounds; evaluate sounds it has not trained on"
        )
    if not pca["sc"] < 1.0:
        return (
            f"{scores}: no verdict. PCA does no better than silence (SC 1.0) on these files, "
            "so beating it says nothing; evaluate on more sounds, or train on more"
        )
    ratio = model["sc"] / max(pca["sc"], 1e-12)
    # within 1% either way is a tie, not a win: SC on a few dozen chunks is that noisy
    word = "beats" if ratio < 0.99 else "is level with" if ratio <= 1.01 else "does not beat"
    return (
        f"{scores}: the model {word} the linear baseline (PCA fitted on "
        f"{pca['train_chunks']} training chunks)"
    )


def verdict(task: str, metrics: dict[str, Any], epochs_run: int | None = None) -> str:
    """The result against its baseline in plain words ("" when there is nothing to say).
    ``epochs_run``: how many epochs the job ran; with the metrics' ``best_epoch`` it tells
    a model that needs more epochs from one that was best early and only got worse."""
    sc, pca = metrics.get("val/sc"), metrics.get("pca/sc")
    if task == "audio" and isinstance(sc, (int, float)) and isinstance(pca, (int, float)):
        if pca <= 0 or not (math.isfinite(sc) and math.isfinite(pca)):
            return ""
        if pca >= 1.0:
            # SC 1 is silence's score: a baseline no better than silence (PCA fitted on a few
            # chunks, extrapolating to the validation ones) makes any "closer than" meaningless
            return (
                f"no verdict against a linear model of its size (PCA): on these few validation "
                f"chunks it scores {pca:.2f}, no better than silence (1.0), so beating it says "
                "nothing; train on more sounds for a verdict"
            )
        change = (pca - sc) / pca
        if abs(change) < 0.01:
            return "it reproduces sounds it never heard as well as a linear model of its size (PCA)"
        if change > 0:
            return (
                f"it reproduces sounds it never heard {change:.0%} closer than a linear model "
                "of its size (PCA)"
            )
        advice = "train longer or on more sounds"
        best = metrics.get("best_epoch")
        if isinstance(best, (int, float)) and epochs_run and best + 1 <= epochs_run / 2:
            advice = (
                f"its best was epoch {int(best) + 1} of {epochs_run}, so more epochs would not "
                "help: train on more sounds, or a smaller model (--preset tiny)"
            )
        return (
            f"it reproduces sounds it never heard {-change:.0%} further off than a linear model "
            f"of its size (PCA): a simpler model would do better; {advice}"
        )
    m = metrics.get("val/mAP50-95", metrics.get("val/mAP50"))
    if task == "detect" and isinstance(m, (int, float)) and math.isfinite(m):
        word = "mAP50-95" if "val/mAP50-95" in metrics else "mAP50"
        quality = "good" if m >= 0.5 else "fair" if m >= 0.25 else "weak"
        return (
            f"{word} {m:.2f} on the validation images: a {quality} detector (1 = every box right)"
        )
    return ""


def finished_event(manager: TrainingManager, job: TrainingJob) -> TrainingFinished | None:
    """The job's newest ``training_finished`` event from the store (None before it ends)."""
    from smalltrain.engine.events import TrainingFinished, event_from_dict

    found = manager.jobs.history.events_of_type(job.id, ["training_finished"], limit=1, newest=True)
    if not found:
        return None
    event = event_from_dict(found[-1][1])
    return event if isinstance(event, TrainingFinished) else None


def _model(manager: TrainingManager, job: TrainingJob) -> Any:
    if not job.artifacts.get("model") or not job.dataset:
        return None
    try:
        return manager.get_model(job.model_name, job.dataset)
    except Exception:  # deleted since, or a broken registry: the summary goes on without it
        return None


def _per_class(model: Any) -> dict[str, dict[str, float]]:
    try:
        data = json.loads((Path(model.path) / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, AttributeError):
        return {}
    per_class = data.get("per_class") if isinstance(data, dict) else None
    return dict(per_class) if isinstance(per_class, dict) else {}


def _headline_note(job: TrainingJob, metrics: dict[str, Any]) -> str:
    """Why the model's score may differ from its best epoch's ("" when it does not): a
    detector's is best.pt evaluated again once training ended (Ultralytics' final validation,
    with the weights as saved), not the number logged during that epoch."""
    if job.task == "detect" and "final/mAP50-95" in metrics:
        return "best.pt evaluated again after training"
    return ""


def _best(job: TrainingJob, metrics: dict[str, float]) -> str:
    """ "epoch 12 of 40: val/sc 0.2452 (PCA 0.4024)" or "epoch 7 of 30: mAP50-95 0.52, ..."."""
    if "best_epoch" not in metrics:
        return ""
    epoch = int(metrics["best_epoch"]) + 1
    total = job.total_epochs or job.config.get("epochs") or "?"
    parts = []
    if "val/sc" in metrics:
        pca = f" (PCA {fmt_number(metrics['pca/sc'])})" if "pca/sc" in metrics else ""
        parts.append(f"val/sc {fmt_number(metrics['val/sc'])}{pca}")
    for key, label in (("val/mAP50-95", "mAP50-95"), ("val/mAP50", "mAP50")):
        if key in metrics:
            parts.append(f"{label} {fmt_number(metrics[key])}")
    return f"epoch {epoch} of {total}" + (f": {', '.join(parts)}" if parts else "")


def _next(job: TrainingJob, model: Any, home: Path) -> list[str]:
    if job.status is not JobStatus.COMPLETED:
        from smalltrain.service.resuming import check_resumable_job

        why_not = check_resumable_job(job, home)
        if why_not is None:
            return [f"smalltrain resume {job.id}"]
        return [f"smalltrain jobs logs {job.id}"]
    if model is None:
        return []
    ref = f"{model.dataset}/{model.name}"
    if job.task == "detect":
        steps = [f"smalltrain predict {ref} IMAGES --out predictions --save-txt",
                 f"smalltrain val {ref}"]  # fmt: skip
    elif job.task == "audio":
        steps = [f"smalltrain generate {ref} -n 8 --out generated",
                 f"smalltrain evaluate {ref} HELD_OUT_FOLDER"]  # fmt: skip
    else:
        steps = [f"smalltrain models show {ref}"]
    if not model.active:
        steps.append(f"smalltrain models activate {ref}")
    return steps


def job_summary(
    manager: TrainingManager, job: TrainingJob, finished: TrainingFinished | None
) -> dict[str, Any]:
    """What ``print_summary`` shows, as plain data."""
    from smalltrain.engine.context import metric_label  # the event classes: not at start-up

    metrics = dict(finished.metrics) if finished is not None else {}
    model = _model(manager, job)
    run_dir = Path(job.run_dir) if job.run_dir else None
    duration = (job.finished_at or 0) - (job.started_at or 0) if job.started_at else None
    out: dict[str, Any] = {
        "verdict": verdict(job.task, metrics, job.epoch or job.total_epochs),
        "job": job.id,
        "status": job.status.value,
        "reason": job.status_reason,
        "duration_s": duration,
        "epochs_completed": finished.epochs_completed if finished else job.epoch,
        "best": _best(job, metrics),
        "metrics": metrics,
        "run_dir": str(run_dir) if run_dir else None,
        "plot": str(run_dir / _PLOT) if run_dir and (run_dir / _PLOT).is_file() else None,
        "model": f"{model.dataset}/{model.name}" if model else None,
        "active": bool(model.active) if model else None,
        "activation": job.artifacts.get("activation"),
        "headline": (
            {
                "metric": metric_label(model.headline_metric),
                "value": model.headline_value,
                "note": _headline_note(job, metrics),
            }
            if model and model.headline_value is not None
            else None
        ),
        "per_class": _per_class(model) if model else {},
        "next": _next(job, model, manager.home),
    }
    if job.status is not JobStatus.COMPLETED:
        from smalltrain.service.resuming import check_resumable_job

        out["resume"] = check_resumable_job(job, manager.home) or "resumable"
    return out
