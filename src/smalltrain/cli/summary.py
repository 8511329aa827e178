"""The summary a training command ends with: what came out and what to run next.

For a completed job: the best epoch and its headline metric (beside PCA's for audio; mAP and
the per-class table for detection), the run folder, the metrics plot, the registered model and
whether it became active (and why), then ``next:`` commands. For a cancelled or failed job:
how far it got and how to resume (or why it cannot). ``--json`` gets the same as a dict.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smalltrain.cli.output import fmt_number, print_fields
from smalltrain.engine.jobs import JobStatus, TrainingJob

if TYPE_CHECKING:
    from smalltrain.engine.events import TrainingFinished
    from smalltrain.service.manager import TrainingManager

__all__ = ["job_summary", "print_summary"]

_PLOT = "metrics.png"


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
            {"metric": metric_label(model.headline_metric), "value": model.headline_value}
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


def print_summary(data: dict[str, Any]) -> None:
    """Print a summary built by ``job_summary`` for a person."""
    from smalltrain.cli.common import console
    from smalltrain.cli.detect import print_per_class

    rows: list[tuple[str, Any]] = [("job", f"{data['job']} {data['status'].lower()}")]
    if data["duration_s"] is not None:
        rows.append(("took", f"{data['duration_s']:.1f} s"))
    if data["best"]:
        rows.append(("best epoch", data["best"]))
    if data["headline"]:
        rows.append(("model metric", f"{data['headline']['metric']} "
                                     f"{fmt_number(data['headline']['value'])}"))  # fmt: skip
    rows += [("run folder", data["run_dir"] or "-")]
    if data["plot"]:
        rows.append(("metrics plot", data["plot"]))
    if data["model"]:
        rows.append(("model", data["model"]))
        rows.append(("active", data["activation"] or ("yes" if data["active"] else "no")))
    console.print()
    print_fields(rows)
    if data["per_class"]:
        print_per_class(data["per_class"], title="per class (best.pt on the val split)")
    for i, command in enumerate(data["next"]):
        console.print(("next: " if i == 0 else "      ") + command)
