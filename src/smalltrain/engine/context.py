"""The contract between the engine and a task: CancelToken, JobContext, TrainResult, Task.

It also says where a run resumes from: ``Task.resume_point(run_dir)`` returns a
``ResumePoint`` or raises ``NotResumable`` with the reason. Tasks that keep the engine's
checkpoint format under ``run_dir/checkpoints`` use ``checkpoint_resume_point``; a task with its
own resumable state (detection keeps Ultralytics' ``last.pt``) answers for itself. The service
asks the task through ``resume_point_of`` and never looks inside a run folder itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, get_args, runtime_checkable

from smalltrain.engine.checkpoint_index import choose_checkpoint
from smalltrain.engine.events import Event, ResultStatus
from smalltrain.errors import NotResumable

#: How a cancel stops a job: "graceful" finishes the step and checkpoints; "immediate" stops as
#: soon as it can (still leaving a resumable checkpoint where the task can).
CancelMode = Literal["graceful", "immediate"]
CANCEL_MODES: tuple[CancelMode, ...] = get_args(CancelMode)


def cancel_mode(value: str) -> CancelMode:
    """``value`` as a ``CancelMode`` (it comes from a database, a pipe or a command line).

    Raises:
        ValueError: it is neither "graceful" nor "immediate".
    """
    if value not in CANCEL_MODES:
        raise ValueError(f"cancel mode must be 'graceful' or 'immediate', not {value!r}")
    return value


class CancelToken:
    """A cooperative stop request, checked by training loops every batch.

    ``mode`` is "graceful" (finish the current step, write a checkpoint, stop) or
    "immediate" (stop as soon as possible; still leaves a resumable checkpoint where the task
    can). ``reason`` is a short text for the job record.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self.mode: CancelMode = "graceful"
        self.reason = ""

    def cancel(self, reason: str = "cancelled by user", mode: CancelMode = "graceful") -> None:
        """Ask the job to stop (again with "immediate" to escalate).

        Raises:
            ValueError: ``mode`` is not a ``CancelMode``.
        """
        self.mode = cancel_mode(mode)
        self.reason = reason
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    __bool__ = is_set

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)

    def clear(self) -> None:
        self._event.clear()
        self.reason = ""
        self.mode = "graceful"


@dataclass(frozen=True)
class ResourceLimits:
    """Limits the process running a job applies to itself."""

    max_gpu_memory_percent: float | None = None
    cpu_threads: int | None = None


def _no_emit(event: Event) -> None:
    """Default emitter: drop events."""


@dataclass
class JobContext:
    """Everything a task's ``train`` may use. It never sees the manager, store, CLI or UI."""

    job_id: str
    config: Any
    dataset_path: Path
    run_dir: Path
    cancel: CancelToken = field(default_factory=CancelToken)
    emit: Callable[[Event], None] = _no_emit
    resume_from: Path | None = None
    device: str = "cpu"
    limits: ResourceLimits = field(default_factory=ResourceLimits)
    cache_dir: Path | None = None


@dataclass(frozen=True)
class TrainResult:
    """What a finished ``train`` call hands back to whoever ran it."""

    status: ResultStatus
    epochs_completed: int
    global_step: int
    run_dir: Path
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    weights: Path | None  # the file to register (best model, stripped for inference)
    metrics: Mapping[str, float] = field(default_factory=dict)
    headline_metric: str = ""  # the metric the task optimises, e.g. "best_val_sc"
    headline_value: float | None = None
    headline_mode: str = ""  # "min" or "max" (better is lower / higher); "" = from the name
    artifacts: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ResumePoint:
    """Where a run resumes from: ``path`` becomes the next attempt's ``ctx.resume_from``.

    ``description`` says it in words for the job record, e.g. "last.pt after epoch 3 of 10".
    """

    path: Path
    description: str = ""


def checkpoint_resume_point(run_dir: Path) -> ResumePoint:
    """The newest checkpoint in ``run_dir/checkpoints`` that matches its sidecar (or, when
    none does, the newest unverified one, and the description warns about it).

    Raises:
        NotResumable: there is none.
    """
    folder = Path(run_dir) / "checkpoints"
    found = choose_checkpoint(folder)
    if found is None:
        raise NotResumable(f"no valid checkpoint in {folder}")
    description = f"resuming from {found.path.name}"
    if found.note:
        description = f"{description}; WARNING: {found.note}"
    return ResumePoint(found.path, description)


def resume_point_of(task: Any, run_dir: Path) -> ResumePoint:
    """Ask ``task`` where ``run_dir`` resumes from (tasks without ``resume_point`` keep the
    engine's checkpoint format). Raises NotResumable with the reason."""
    method = getattr(task, "resume_point", None)
    if method is None:
        return checkpoint_resume_point(Path(run_dir))
    point: ResumePoint = method(Path(run_dir))
    return point


def metric_mode(name: str, mode: str = "") -> str:
    """Whether lower ("min") or higher ("max") is better for metric ``name``.

    An explicit ``mode`` wins; otherwise losses, errors, spectral convergence and distances are
    "min" and everything else (accuracies, mAP) is "max".
    """
    if mode in ("min", "max"):
        return mode
    low = name.lower()
    lower_is_better = ("loss", "error", "_sc", "/sc", "l1", "_db", "distance", "frechet")
    return "min" if any(part in low for part in lower_is_better) else "max"


_LABELS = {"best_map50_95": "mAP50-95", "best_map50": "mAP50"}


def metric_label(name: str) -> str:
    """A headline key as people read it: "best_val_sc" -> "val/sc", "best_map50_95" ->
    "mAP50-95"."""
    if name in _LABELS:
        return _LABELS[name]
    text = name.removeprefix("best_")
    return text.replace("val_", "val/", 1) if text.startswith("val_") else text


@runtime_checkable
class DatasetReport(Protocol):
    """What every task's ``inspect`` returns (read-only here: a frozen dataclass qualifies)."""

    @property
    def kind(self) -> str: ...

    @property
    def fingerprint(self) -> str: ...

    def snapshot(self) -> str:
        """A one-line summary such as "35 files, 12.5 min" or "200 images, 3 classes"."""
        ...

    def to_dict(self) -> dict[str, Any]: ...


class Task(Protocol):
    """A kind of training job. One implementation runs inline, in a thread or in a child."""

    name: str

    def inspect(self, path: Path) -> DatasetReport:
        """Validate and summarise a dataset; raises DatasetError if nothing is usable."""
        ...

    def adaptive_config(
        self, report: DatasetReport, device: str, preset: str = "auto", **overrides: Any
    ) -> Any:
        """Choose a config for this dataset and device; user overrides win."""
        ...

    def config_from_dict(self, data: Mapping[str, Any]) -> Any:
        """Rebuild a validated config from its ``to_dict`` form."""
        ...

    def train(self, ctx: JobContext) -> TrainResult:
        """Run training to completion or cancellation; blocks."""
        ...

    def resume_point(self, run_dir: Path) -> ResumePoint:
        """Where the run in ``run_dir`` resumes from.

        Raises:
            NotResumable: it cannot resume (nothing saved, or the run already finished); the
                message says why and what to do instead.
        """
        ...

    def field_help(self) -> Mapping[str, str]:
        """A one-line description of every config field (``smalltrain config show``)."""
        ...
