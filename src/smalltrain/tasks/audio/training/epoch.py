"""One epoch of training (``train_epoch``) and of validation (``validate_epoch``).

The run loop around them (epochs, checkpoints, early stopping) is ``train.py``.

The training state lives in one dataclass, ``TrainState``. ``train_epoch`` is a flat loop over
the batches: a step (``_train_step``: set the learning rate and KL weight, forward, skip or
update), record, check for cancel.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from smalltrain.engine.context import CancelToken
from smalltrain.engine.events import Event, StepMetrics, WarningEvent
from smalltrain.tasks.audio.config import TrainingConfig
from smalltrain.tasks.audio.model.losses import KLSchedule, get_kl_weight, vae_loss
from smalltrain.tasks.audio.model.model import ConvVAE

# Order of the per-step values kept on the device between host reads.
_STEP_KEYS = ("train/loss", "train/recon", "train/kl", "train/sc", "finite")


class LRSchedule:
    """Learning rate as a function of *successful* optimizer steps (linear warm-up, cosine)."""

    def __init__(self, base_lr: float, total_steps: int, warmup_steps: int, mode: str) -> None:
        self.base_lr = base_lr
        self.total_steps = max(total_steps, 1)
        self.warmup_steps = warmup_steps
        self.mode = mode
        self.step_count = 0

    def lr(self) -> float:
        s = self.step_count
        if self.warmup_steps and s < self.warmup_steps:
            return self.base_lr * (s + 1) / self.warmup_steps
        if self.mode == "constant":
            return self.base_lr
        progress = min(1.0, (s - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return self.base_lr * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress)))

    def step(self) -> None:
        self.step_count += 1

    def state_dict(self) -> dict[str, Any]:
        return {"step_count": self.step_count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count = int(state["step_count"])


@dataclass(kw_only=True)
class TrainState:
    """Everything that changes while training, in one place; built with keyword arguments."""

    model: ConvVAE
    optimizer: torch.optim.Optimizer
    lr_schedule: LRSchedule
    kl: KLSchedule
    config: TrainingConfig
    device: torch.device
    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    lr_scale: float = 1.0
    rollbacks: int = 0
    skipped_total: int = 0
    consecutive_skips: int = 0
    best_score: float = math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    smoothed_score: float = math.nan  # the monitor's moving average (config.val_smoothing_steps)
    epoch_sums: dict[str, float] = field(default_factory=dict)
    epoch_steps: int = 0
    epoch_skipped: int = 0

    _SCALARS = (
        "epoch",
        "step_in_epoch",
        "global_step",
        "lr_scale",
        "rollbacks",
        "skipped_total",
        "consecutive_skips",
        "best_score",
        "best_epoch",
        "bad_epochs",
        "epoch_steps",
        "epoch_skipped",
        "smoothed_score",
    )
    _ADDED = {"smoothed_score"}  # a checkpoint written before it existed lacks it

    def counters(self) -> dict[str, Any]:
        """Plain-value counters for the checkpoint (model/optimizer are saved separately)."""
        out: dict[str, Any] = {name: getattr(self, name) for name in self._SCALARS}
        out["epoch_sums"] = dict(self.epoch_sums)
        return out

    def load_counters(self, data: dict[str, Any]) -> None:
        for name in self._SCALARS:
            if name in self._ADDED and name not in data:
                continue
            setattr(self, name, type(getattr(self, name))(data[name]))
        self.epoch_sums = {k: float(v) for k, v in data["epoch_sums"].items()}

    def start_epoch(self) -> None:
        self.step_in_epoch = 0
        self.epoch_sums = {}
        self.epoch_steps = 0
        self.epoch_skipped = 0


@dataclass
class _Pending:
    """Per-step values waiting on the device until the next host read."""

    info: list[tuple[int, int, int, float, float, float]] = field(default_factory=list)
    values: list[torch.Tensor] = field(default_factory=list)


def _set_lr(state: TrainState) -> float:
    lr = state.lr_schedule.lr() * state.lr_scale
    for group in state.optimizer.param_groups:
        group["lr"] = lr
    return lr


def _host_checked_update(state: TrainState, loss: torch.Tensor) -> bool:
    """CPU/MPS: decide on the host (free here) and skip backward, step and schedule on NaN."""
    if not bool(torch.isfinite(loss)):
        return False
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    clip = state.config.grad_clip_norm
    if clip > 0 and not _clip_on_host(state.model, clip):
        return False
    state.optimizer.step()
    state.lr_schedule.step()
    return True


def _clip_on_host(model: torch.nn.Module, clip: float) -> bool:
    """``clip_grad_norm_(foreach=True)`` with its scaling left out where it would multiply
    every gradient by exactly 1.0 (the norm is read on the host, free off CUDA): one pass over
    the gradients instead of two on such steps, with bit-identical results. False when the
    norm is not finite (the step is skipped)."""
    utils = torch.nn.utils
    if not hasattr(utils, "get_total_norm"):  # torch < 2.6
        return bool(torch.isfinite(utils.clip_grad_norm_(model.parameters(), clip, foreach=True)))
    params = [p for p in model.parameters() if p.grad is not None]
    total = utils.get_total_norm([p.grad for p in params if p.grad is not None], foreach=True)
    norm = float(total)
    if not math.isfinite(norm):
        return False
    if clip / (norm + 1e-6) < 1.0:  # the scale clip_grad_norm_ clamps to at most 1
        utils.clip_grads_with_norm_(params, clip, total, foreach=True)
    return True


def _device_checked_update(state: TrainState, loss: torch.Tensor) -> torch.Tensor:
    """CUDA: no host sync. A fused optimizer skips its own update when ``found_inf`` is set.

    The schedule step is corrected at the next host read (see ``_flush``).
    """
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    finite = torch.isfinite(loss)
    clip = state.config.grad_clip_norm
    if clip > 0:
        norm = torch.nn.utils.clip_grad_norm_(state.model.parameters(), clip, foreach=True)
        finite = finite & torch.isfinite(norm)
    # 0-dim, like the step counters it is subtracted from (shape [1] fails to broadcast there)
    state.optimizer.found_inf = (~finite).float()  # type: ignore[attr-defined]
    state.optimizer.step()
    state.lr_schedule.step()
    return finite


def _flush(
    state: TrainState,
    pending: _Pending,
    steps_per_epoch: int,
    emit: Callable[[Event], None],
    sync_every: int,
) -> bool:
    """Read pending step values to the host, emit them, count skips. True = diverging."""
    if not pending.values:
        return False
    rows = torch.stack(pending.values).cpu().tolist()
    diverging = False
    for (epoch, step, gstep, lr, beta, dt), row in zip(pending.info, rows, strict=True):
        metrics = dict(zip(_STEP_KEYS, row, strict=True))
        ok = metrics.pop("finite") > 0.5
        if ok:
            _count_good_step(state, metrics)
        else:
            diverging = _count_skipped_step(state, epoch, gstep, emit, sync_every) or diverging
        metrics.update(
            {"kl/beta": beta, "lr": lr, "time/step_s": dt, "train/skipped": float(not ok)}
        )
        emit(
            StepMetrics(
                epoch=epoch,
                step=step,
                global_step=gstep,
                steps_per_epoch=steps_per_epoch,
                metrics=metrics,
            )
        )
    pending.info.clear()
    pending.values.clear()
    return diverging


def _count_good_step(state: TrainState, metrics: dict[str, float]) -> None:
    state.consecutive_skips = 0
    state.epoch_steps += 1
    for key, value in metrics.items():
        state.epoch_sums[key] = state.epoch_sums.get(key, 0.0) + value


def _count_skipped_step(
    state: TrainState, epoch: int, gstep: int, emit: Callable[[Event], None], sync_every: int
) -> bool:
    """Count a skipped (non-finite) step, warn at the epoch's first. True = diverging."""
    if sync_every > 1:  # the device path already advanced the schedule
        state.lr_schedule.step_count -= 1
    state.consecutive_skips += 1
    state.skipped_total += 1
    state.epoch_skipped += 1
    if state.epoch_skipped == 1:
        emit(
            WarningEvent(
                code="nan_loss",
                message=f"non-finite loss at step {gstep}: update skipped "
                f"(skips are counted in train/skipped_steps)",
                epoch=epoch,
            )
        )
    return state.consecutive_skips >= state.config.nan_skip_limit


def _train_step(
    state: TrainState, batch: torch.Tensor, on_cuda: bool
) -> tuple[torch.Tensor, float, float]:
    """One step (an update, or a skip on a non-finite loss).

    Returns the step's values in ``_STEP_KEYS`` order, still on the device, the learning rate
    and the KL weight.
    """
    cfg = state.config
    # 1. learning rate and KL weight for this step
    lr = _set_lr(state)
    beta = get_kl_weight(state.global_step, state.kl)
    # 2. forward
    x = batch.to(state.device, non_blocking=True)
    x_hat, mu, logvar = state.model(x)
    losses = vae_loss(
        x_hat, x, mu, logvar, beta, sc_weight=cfg.sc_weight, floor_db=cfg.floor_db,
        kl_mask=state.model.kl_mask,
    )  # fmt: skip
    # 3. update, unless the loss is not finite
    if on_cuda:
        finite = _device_checked_update(state, losses["loss"])
    else:
        finite = torch.tensor(_host_checked_update(state, losses["loss"]))
    # 4. record (values stay on the device until the next host read)
    values = torch.stack(
        [
            losses["loss"].detach(),
            losses["recon"].detach(),
            losses["kl"].detach(),
            losses["sc"].detach(),
            finite.to(losses["loss"].dtype),
        ]
    )
    return values, lr, beta


def train_epoch(
    state: TrainState,
    batches: Iterable[torch.Tensor],
    *,
    steps_per_epoch: int,
    emit: Callable[[Event], None],
    cancel: CancelToken,
) -> str:
    """Train until the loader is exhausted, a cancel arrives, or the loss keeps failing.

    A NaN/inf loss skips backward, the optimizer step and the schedule step, and is counted.
    The cancel token is checked after every batch.

    Returns:
        "completed", "cancelled", or "diverging" (``nan_skip_limit`` consecutive skips: the
        caller rolls back to the last good checkpoint).
    """
    state.model.train()
    on_cuda = state.device.type == "cuda"
    sync_every = state.config.metrics_sync_every if on_cuda else 1
    pending = _Pending()
    data_wait = 0.0
    t_last = time.perf_counter()
    for batch in batches:
        t_data = time.perf_counter()
        data_wait += t_data - t_last
        values, lr, beta = _train_step(state, batch, on_cuda)
        pending.values.append(values)
        t_last = time.perf_counter()
        pending.info.append(
            (state.epoch, state.step_in_epoch, state.global_step, lr, beta, t_last - t_data)
        )
        state.global_step += 1
        state.step_in_epoch += 1
        if len(pending.values) >= sync_every and _flush(
            state, pending, steps_per_epoch, emit, sync_every
        ):
            return "diverging"
        # stop?
        if cancel.is_set():
            _flush(state, pending, steps_per_epoch, emit, sync_every)
            return "cancelled"
    state.epoch_sums["time/data_wait_s"] = state.epoch_sums.get("time/data_wait_s", 0.0) + data_wait
    if _flush(state, pending, steps_per_epoch, emit, sync_every):
        return "diverging"
    return "completed"


def epoch_train_metrics(state: TrainState) -> dict[str, float]:
    """Mean train metrics over the epoch's successful steps, plus skip counts."""
    n = max(state.epoch_steps, 1)
    out = {k: v / n for k, v in state.epoch_sums.items() if k.startswith("train/")}
    out["train/skipped_steps"] = float(state.epoch_skipped)
    out["train/skipped_total"] = float(state.skipped_total)
    if "time/data_wait_s" in state.epoch_sums:
        out["time/data_wait_s"] = state.epoch_sums["time/data_wait_s"]
    return out


@torch.no_grad()
def validate_epoch(
    state: TrainState,
    batches: Iterable[torch.Tensor],
    *,
    emit: Callable[[Event], None],
    keep: list[torch.Tensor] | None = None,
) -> dict[str, float]:
    """Validation loss and raw KL (nats) on the posterior mean; warns on posterior collapse.

    With ``keep``, the reconstructions (on the CPU, in loader order) are appended to it, for
    metrics that need them (the PCA comparison) without a second pass over the model.

    Validation uses the mean latent (no sampling), so it draws no random numbers and leaves
    the training RNG stream untouched.
    """
    cfg = state.config
    model = state.model
    model.eval()
    beta = get_kl_weight(state.global_step, state.kl)
    sums: dict[str, torch.Tensor] = {}
    count = 0
    for batch in batches:
        x = batch.to(state.device, non_blocking=True)
        mu, logvar = model.encode(x)
        x_hat = model.decode(mu)
        losses = vae_loss(
            x_hat, x, mu, logvar, beta, sc_weight=cfg.sc_weight, floor_db=cfg.floor_db,
            kl_mask=model.kl_mask,
        )  # fmt: skip
        if keep is not None:
            keep.append(x_hat.detach().cpu())
        n = x.shape[0]
        for key in ("loss", "recon", "kl", "sc", "l1"):
            sums[key] = sums.get(key, torch.zeros((), device=x.device)) + losses[key].detach() * n
        count += n
    model.train()
    if count == 0:
        return {}
    host = {k: float(v) / count for k, v in sums.items()}
    metrics = {
        "val/loss": host["loss"],
        "val/recon": host["recon"],
        "val/kl_raw": host["kl"],
        "val/sc_loss": host["sc"],
        "val/l1": host["l1"],
    }
    _warn_collapse(state, host["kl"], emit)
    return metrics


def _warn_collapse(state: TrainState, kl: float, emit: Callable[[Event], None]) -> None:
    threshold = state.config.collapse_kl_threshold
    if math.isfinite(kl) and kl < threshold:
        emit(
            WarningEvent(
                code="posterior_collapse",
                message=f"validation KL is {kl:.3f} nats "
                f"(< {threshold}): the decoder may be ignoring the latent. "
                "Try a lower kl_beta_max or a longer warm-up.",
                epoch=state.epoch,
            )
        )
