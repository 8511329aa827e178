"""The summary a training command ends with: what came out and what to run next.

For a completed job: the best epoch and its headline metric (beside PCA's for audio; mAP and
the per-class table for detection), the run folder, the metrics plot, the registered model and
whether it became active (and why), then ``next:`` commands. For a cancelled or failed job:
how far it got and how to resume (or why it cannot). ``--json`` gets the same as a dict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smalltrain.cli.output import fmt_number, print_fields

if TYPE_CHECKING:
    from smalltrain.engine.events import TrainingFinished
    from smalltrain.engine.jobs import TrainingJob
    from smalltrain.service.manager import TrainingManager

__all__ = ["job_summary", "print_summary"]


def job_summary(
    manager: TrainingManager, job: TrainingJob, finished: TrainingFinished | None
) -> dict[str, Any]:
    """``service.summary.job_summary`` (imported when called: ``--help`` loads no service)."""
    from smalltrain.service.summary import job_summary as summarise

    return summarise(manager, job, finished)


def print_summary(data: dict[str, Any]) -> None:
    """Print a summary built by ``job_summary`` for a person."""
    from smalltrain.cli.common import console
    from smalltrain.cli.detect import print_per_class

    rows: list[tuple[str, Any]] = [("job", f"{data['job']} {data['status'].lower()}")]
    if data["duration_s"] is not None:
        rows.append(("took", f"{data['duration_s']:.1f} s"))
    if data["best"]:
        rows.append(("best epoch", data["best"]))
    if data.get("verdict"):
        rows.append(("verdict", data["verdict"]))
    if data["headline"]:
        head = data["headline"]
        note = f" ({head['note']})" if head.get("note") else ""
        rows.append(("model metric", f"{head['metric']} {fmt_number(head['value'])}{note}"))
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
