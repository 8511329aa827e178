"""A minimal real task: the engine's tests and benchmarks run it in isolation from the audio and
detection tasks, and it is the smallest example of the Task contract for anyone writing a new one.
It is not registered by default; register it with ``$SMALLTRAIN_EXTRA_TASKS``
(``toy=smalltrain.tasks.toy:ToyTask``) or ``install``.

It trains a tiny torch regression model on seeded random data, honours ``ctx.cancel`` every
step, writes resumable checkpoints with the engine's checkpoint functions under
``run_dir/checkpoints``, resumes from ``ctx.resume_from``, and returns a ``TrainResult`` with a
``weights`` file. A few config knobs misbehave on purpose so tests can exercise the engine's
failure paths: ``ignore_cancel`` (a child that must be killed after the grace period),
``busy_steps`` (steps that, like real compute, finish before a cancel is seen),
``raise_at_step`` (an exception with a traceback) and ``exit_at_step`` (a hard exit without a
final message). For the fault tests: ``scratch_bytes`` writes a scratch file with plain
``open().write()`` first (a task's own cache, outside the engine's helpers), and
``write_pause_s`` makes each checkpoint also write a small state file through ``atomic_write``
that pauses half-way, so a kill can land mid-write.

Like the real tasks, the module does not import torch: ``train`` does. A CLI or scheduler
process that only plans, resumes or settles a toy job (and the fault tests start many) then
never pays for torch; the job's own process does, as for audio and detection.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smalltrain.engine.config import apply_overrides
from smalltrain.engine.context import (
    JobContext,
    ResultStatus,
    ResumePoint,
    TrainResult,
    checkpoint_resume_point,
)
from smalltrain.engine.events import (
    CheckpointSaved,
    EpochMetrics,
    StepMetrics,
    TrainingFinished,
    TrainingStarted,
)
from smalltrain.engine.fsutil import atomic_write
from smalltrain.errors import DatasetError
from smalltrain.tasks import EXTRA_TASKS_ENV, register_task

TARGET = "smalltrain.tasks.toy:ToyTask"


def install() -> None:
    """Register the toy task in this process and in every child or subprocess started after.

    Children learn it from ``$SMALLTRAIN_EXTRA_TASKS`` (read when a child starts).
    """
    names = [p for p in os.environ.get(EXTRA_TASKS_ENV, "").split(",") if p.strip()]
    if f"toy={TARGET}" not in names:
        os.environ[EXTRA_TASKS_ENV] = ",".join([*names, f"toy={TARGET}"])
    register_task("toy", TARGET)


@dataclass(frozen=True)
class ToyConfig:
    """Config of the toy task; ``step_s`` paces each step so tests can act mid-training."""

    epochs: int = 2
    steps_per_epoch: int = 4
    hidden: int = 8
    lr: float = 0.05
    step_s: float = 0.0
    ignore_cancel: bool = False
    busy_steps: bool = False  # a step is compute that cannot stop midway (cancel waits for it)
    raise_at_step: int = -1
    exit_at_step: int = -1
    seed: int = 0
    model_name: str = ""
    # GPU checks: the scheduler caps the job's process at this fraction of the card (0: none);
    # ``gpu_alloc_fraction`` allocates that fraction of the card on ctx.device at the first
    # step (a real allocation, for a real GPU); ``fake_oom_at_step`` raises the error torch
    # raises when CUDA memory runs out (a fake, for machines without a GPU).
    max_gpu_memory_percent: float = 0.0
    gpu_alloc_fraction: float = 0.0
    fake_oom_at_step: int = -1
    scratch_bytes: int = 0
    write_pause_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELD_HELP = {
    "epochs": "passes over the 16 random samples",
    "steps_per_epoch": "optimiser steps in each epoch",
    "hidden": "width of the hidden layer",
    "lr": "SGD learning rate",
    "step_s": "seconds each step waits (paces a test; a cancel wakes it)",
    "ignore_cancel": "never stop on cancel (the engine must kill the child after its grace)",
    "busy_steps": "each step sleeps its step_s through a cancel, like compute that cannot stop",
    "raise_at_step": "raise an exception at this global step (-1: never)",
    "exit_at_step": "exit the process at this global step without a message (-1: never)",
    "seed": "seed of torch's RNG: the data and the initial weights",
    "model_name": "name the trained model is registered under",
    "scratch_bytes": "bytes written to run_dir/scratch.bin with plain open() before training",
    "write_pause_s": "each checkpoint also writes state.bin, pausing this long half-way",
    "max_gpu_memory_percent": "fraction of the GPU the job's process may use (0 = no cap)",
    "gpu_alloc_fraction": "allocate this fraction of the card on the job's device at step 0",
    "fake_oom_at_step": "raise the error torch raises when CUDA memory runs out (no GPU used)",
}


@dataclass(frozen=True)
class ToyReport:
    """What ``ToyTask.inspect`` finds: how many files the folder holds."""

    kind: str
    fingerprint: str
    files: int

    def snapshot(self) -> str:
        return f"{self.files} files"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class ToyTask:
    """The toy task (see the module docstring)."""

    name = "toy"
    sweep_metric = ("val/loss", "min")

    def inspect(self, path: Path) -> ToyReport:
        path = Path(path)
        if not path.is_dir():
            raise DatasetError(f"{path}: the toy task needs a folder")
        names = sorted(p.name for p in path.iterdir())
        digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]
        return ToyReport(kind="toy", fingerprint=digest, files=len(names))

    def adaptive_config(
        self, report: Any, device: str, preset: str = "auto", **overrides: Any
    ) -> ToyConfig:
        return apply_overrides(ToyConfig(), overrides)

    def config_from_dict(self, data: Mapping[str, Any]) -> ToyConfig:
        return ToyConfig(**dict(data))

    def resume_point(self, run_dir: Path) -> ResumePoint:
        """The newest checkpoint in ``run_dir/checkpoints`` that matches its sidecar."""
        return checkpoint_resume_point(run_dir)

    def field_help(self) -> Mapping[str, str]:
        """One line per config field (``smalltrain config show toy``)."""
        return FIELD_HELP

    def train(self, ctx: JobContext) -> TrainResult:
        import torch

        from smalltrain.engine.checkpoints import (
            capture_rng_state,
            load_checkpoint,
            restore_rng_state,
            save_checkpoint,
            save_torch_file,
            strip_for_inference,
        )

        cfg: ToyConfig = ctx.config
        torch.manual_seed(cfg.seed)
        data = torch.randn(16, 4)
        target = data.sum(dim=1, keepdim=True)
        model = torch.nn.Sequential(
            torch.nn.Linear(4, cfg.hidden), torch.nn.Tanh(), torch.nn.Linear(cfg.hidden, 1)
        )
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr)
        ckpt_dir = ctx.run_dir / "checkpoints"
        if cfg.scratch_bytes:
            with open(ctx.run_dir / "scratch.bin", "wb") as scratch:
                scratch.write(b"s" * cfg.scratch_bytes)
        epoch, step, best = 0, 0, float("inf")
        if ctx.resume_from is not None:
            state = load_checkpoint(ctx.resume_from)
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            restore_rng_state(state["rng"])
            epoch, step, best = state["next_epoch"], state["next_step"], state["best"]
        spe = cfg.steps_per_epoch
        ctx.emit(
            TrainingStarted(
                total_epochs=cfg.epochs,
                steps_per_epoch=spe,
                start_epoch=epoch,
                start_step=step,
                resumed_from=str(ctx.resume_from) if ctx.resume_from else None,
                device=ctx.device,
                info={
                    "pid": os.getpid(),
                    "threads": torch.get_num_threads(),
                    "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                    # what the task was handed, so tests can check every executor passes it
                    "limits": dataclasses.asdict(ctx.limits),
                    "cache_dir": str(ctx.cache_dir) if ctx.cache_dir else None,
                },
            )
        )

        def checkpoint(reason: str) -> Path:
            state = {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "rng": capture_rng_state(),
                "model_args": {"hidden": cfg.hidden},
                "next_epoch": epoch,
                "next_step": step,
                "best": best,
            }
            gs = epoch * spe + step
            if cfg.write_pause_s > 0:
                self._slow_write(ctx.run_dir / "state.bin", gs, cfg.write_pause_s)
            path = save_checkpoint(ckpt_dir, state, epoch=epoch, global_step=gs, reason=reason)
            ctx.emit(CheckpointSaved(path=str(path), epoch=epoch, global_step=gs, reason=reason))
            return path

        last: Path | None = None
        while epoch < cfg.epochs:
            while step < spe:
                gs = epoch * spe + step
                if ctx.cancel.is_set() and not cfg.ignore_cancel:
                    last = checkpoint("cancel")
                    return self._result(ctx, "cancelled", epoch, gs, last, None, best)
                if gs == cfg.raise_at_step:
                    raise RuntimeError(f"toy task failure at step {gs}")
                if gs == cfg.exit_at_step:
                    os._exit(3)
                self._gpu_checks(ctx, cfg, gs)
                loss = torch.nn.functional.mse_loss(model(data), target)
                opt.zero_grad()
                loss.backward()
                opt.step()
                ctx.emit(StepMetrics(epoch, step, gs, spe, {"train/loss": loss.item()}))
                step += 1
                self._pace(ctx, cfg)
            best = min(best, loss.item())
            ctx.emit(EpochMetrics(epoch, cfg.epochs, {"train/loss": loss.item(), "val/loss": best}))
            epoch, step = epoch + 1, 0
            last = checkpoint("interval")
        weights = ctx.run_dir / "export" / "best.pt"
        export = strip_for_inference({"model": model.state_dict(), "model_args": {}})
        save_torch_file(weights, export, what="exported model")
        return self._result(ctx, "completed", epoch, epoch * spe, last, weights, best)

    @staticmethod
    def _gpu_checks(ctx: JobContext, cfg: ToyConfig, global_step: int) -> None:
        import torch

        if cfg.gpu_alloc_fraction > 0 and global_step == 0:
            props = torch.cuda.get_device_properties(torch.device(ctx.device))
            size = int(props.total_memory * cfg.gpu_alloc_fraction)
            torch.empty(size, dtype=torch.uint8, device=ctx.device)
        if global_step == cfg.fake_oom_at_step:
            raise torch.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 30.00 GiB. GPU 0 has a total capacity of "
                "79.19 GiB of which 50.12 GiB is free. (toy task: a fake, no GPU was used)"
            )

    @staticmethod
    def _slow_write(path: Path, global_step: int, pause_s: float) -> None:
        """Write a small state file atomically, pausing half-way (a window for a kill)."""

        def write(f: Any) -> None:
            f.write(f"step {global_step}\n".encode() * 64)
            f.flush()
            time.sleep(pause_s)
            f.write(b"end\n")

        atomic_write(path, write)

    @staticmethod
    def _pace(ctx: JobContext, cfg: ToyConfig) -> None:
        """Stand in for real compute time; a cooperative task still wakes on cancel."""
        if cfg.step_s <= 0:
            return
        if cfg.ignore_cancel or cfg.busy_steps:
            time.sleep(cfg.step_s)
        else:
            ctx.cancel.wait(cfg.step_s)

    @staticmethod
    def _result(
        ctx: JobContext,
        status: ResultStatus,
        epochs: int,
        global_step: int,
        last: Path | None,
        weights: Path | None,
        best: float,
    ) -> TrainResult:
        metrics = {"best_loss": best} if best != float("inf") else {}
        ctx.emit(
            TrainingFinished(
                status=status,
                epochs_completed=epochs,
                global_step=global_step,
                last_checkpoint=str(last) if last else None,
                metrics=metrics,
            )
        )
        return TrainResult(
            status=status,
            epochs_completed=epochs,
            global_step=global_step,
            run_dir=ctx.run_dir,
            best_checkpoint=last,
            last_checkpoint=last,
            weights=weights,
            metrics=metrics,
            headline_metric="best_loss",
            headline_value=metrics.get("best_loss"),
        )
