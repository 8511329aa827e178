"""VAE loss terms and KL annealing: vae_loss, compute_kl_divergence, spectral_convergence,
KLSchedule, get_kl_weight.

Mels are in the normalized scale of ``AudioSpectrogram.normalize``: ``x = (dB - floor) / -floor``,
so ``dB = x * -floor_db + floor_db`` (power dB, reference 1.0) and the linear mel magnitude is
``10 ** (dB / 20)``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import torch
from torch import Tensor

from smalltrain.engine.config import check

# Normalized values above this are clamped before exponentiation in the SC term. Real mels do
# exceed 1 (0 dB is not a ceiling: loud audio reaches about +40 dB, x = 1.5 at floor -80); 2.5 is
# +120 dB at floor -80, beyond anything real, and its square still fits float32 with room.
_MAX_NORM = 2.5


def compute_kl_divergence(mu: Tensor, logvar: Tensor, mask: Tensor | None = None) -> Tensor:
    """KL(q(z|x) || N(0, I)) in nats: summed over latent dims, mean over the batch.

    This is the "raw KL", before any β weighting. ``mask`` (``[latent_dim]`` of 0/1) leaves
    deterministic latent floats out (a gain model's peak level, ``ConvVAE.kl_mask``).
    """
    kl = -0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp())
    if mask is not None:
        kl = kl * mask
    return kl.flatten(1).sum(dim=1).mean()


def floor_l1(x_hat: Tensor, x: Tensor) -> Tensor:
    """Mean absolute error on normalized mels, where any prediction at or below the floor (0)
    matches a target at the floor: the floor is "silence or quieter", so a relative output
    (a gain model's) may go below it there without penalty. For outputs >= 0 this is plain L1.
    """
    err = torch.where(x <= 0.0, x_hat.clamp_min(0.0), (x_hat - x).abs())
    return err.mean()


def norm_to_magnitude(x: Tensor, floor_db: float = -80.0) -> Tensor:
    """Normalized mel ``[0, 1]`` -> linear mel magnitude ``10 ** (dB / 20)`` (differentiable)."""
    db = x.clamp(max=_MAX_NORM) * (-floor_db) + floor_db
    return torch.pow(10.0, db / 20.0)


def spectral_convergence(
    x_hat: Tensor,
    x: Tensor,
    *,
    floor_db: float = -80.0,
    normalized: bool = True,
    reduction: Literal["mean", "none"] = "mean",
    eps: float = 1e-8,
) -> Tensor:
    """Spectral convergence ``||S - S_hat||_F / ||S||_F`` on linear mel magnitude.

    Computed per sample (over every non-batch dim), then averaged. Differentiable.

    Args:
        x_hat: the reconstruction, ``[B, ...]``.
        x: the target, same shape.
        floor_db: the floor of the normalization (only used when ``normalized``). SC does not
            depend on the dB reference (a common gain cancels), only on this dynamic range.
        normalized: inputs are normalized mels (True) or dB values (False).
        reduction: "mean" over the batch, or "none" for a ``[B]`` tensor.
        eps: added to the denominator; an all-zero target then gives ``||S_hat|| / eps``.
    """
    if normalized:
        s_hat, s = norm_to_magnitude(x_hat, floor_db), norm_to_magnitude(x, floor_db)
    else:
        s_hat, s = torch.pow(10.0, x_hat / 20.0), torch.pow(10.0, x / 20.0)
    num = (s - s_hat).flatten(1).norm(dim=1)
    den = s.flatten(1).norm(dim=1) + eps
    sc = num / den
    return sc.mean() if reduction == "mean" else sc


def vae_loss(
    x_hat: Tensor,
    x: Tensor,
    mu: Tensor,
    logvar: Tensor,
    beta: float,
    *,
    sc_weight: float = 0.0,
    floor_db: float = -80.0,
    kl_mask: Tensor | None = None,
) -> dict[str, Tensor]:
    """Reconstruction plus β·KL, every term a 0-dim tensor on the input's device.

    ``l1`` is the mean absolute error on normalized mels (``floor_l1``), ``sc`` the spectral
    convergence (always
    computed, so it can be reported even when ``sc_weight`` is 0), ``recon = l1 + sc_weight * sc``,
    ``kl`` the raw KL in nats and ``loss = recon + beta * kl``.

    Returns:
        ``{"loss", "recon", "l1", "sc", "kl"}``.
    """
    l1 = floor_l1(x_hat, x)
    sc = spectral_convergence(x_hat, x, floor_db=floor_db)
    recon = l1 + sc_weight * sc if sc_weight else l1
    kl = compute_kl_divergence(mu, logvar, kl_mask)
    return {"loss": recon + beta * kl, "recon": recon, "l1": l1, "sc": sc, "kl": kl}


class _ScheduleConfig(Protocol):
    """The fields of the audio TrainingConfig that ``KLSchedule.from_config`` reads."""

    @property
    def kl_beta_max(self) -> float: ...
    @property
    def kl_warmup_epochs(self) -> int: ...
    @property
    def kl_schedule(self) -> str: ...
    @property
    def kl_cycles(self) -> int: ...


@dataclass
class KLSchedule:
    """KL weight annealing from near 0 (``beta_min``) up to ``beta_max``.

    ``linear``: one ramp over ``warmup_steps`` steps after ``start_step``, then hold.
    ``cyclical`` (Fu et al. 2019): the same span is cut into ``cycles`` cycles; each ramps over
    its first ``ratio`` fraction and holds ``beta_max`` for the rest. After the span, hold.

    The weight is a pure function of the global step (``get_kl_weight``), so resuming only needs
    the step; ``state_dict`` is still stored in checkpoints so a resume can check or restore it.
    """

    beta_max: float = 1e-4
    warmup_steps: int = 1000
    mode: Literal["linear", "cyclical"] = "linear"
    cycles: int = 4
    ratio: float = 0.5
    beta_min: float = 1e-6
    start_step: int = 0

    def __post_init__(self) -> None:
        check(
            "beta_max", self.beta_max, _finite(self.beta_max) and self.beta_max >= 0, "must be >= 0"
        )
        check(
            "beta_min", self.beta_min, _finite(self.beta_min) and self.beta_min >= 0, "must be >= 0"
        )
        check("warmup_steps", self.warmup_steps, self.warmup_steps >= 0, "must be >= 0")
        check("mode", self.mode, self.mode in ("linear", "cyclical"), "must be linear or cyclical")
        check("cycles", self.cycles, self.cycles >= 1, "must be >= 1")
        check("ratio", self.ratio, 0 < self.ratio <= 1, "must be in (0, 1]")
        check("start_step", self.start_step, self.start_step >= 0, "must be >= 0")

    @classmethod
    def from_config(cls, config: _ScheduleConfig, steps_per_epoch: int) -> KLSchedule:
        """Build the schedule of an audio ``TrainingConfig`` (epochs converted to steps)."""
        mode: Literal["linear", "cyclical"] = (
            "cyclical" if config.kl_schedule == "cyclical" else "linear"
        )
        return cls(
            beta_max=config.kl_beta_max,
            warmup_steps=config.kl_warmup_epochs * max(1, steps_per_epoch),
            mode=mode,
            cycles=config.kl_cycles,
        )

    def __call__(self, step: int) -> float:
        """Shortcut for ``get_kl_weight(step, self)``."""
        return get_kl_weight(step, self)

    def state_dict(self) -> dict[str, Any]:
        """Plain-JSON state for checkpoints."""
        return dataclasses.asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore fields from ``state_dict()`` output; unknown keys are ignored."""
        names = {f.name for f in dataclasses.fields(self)}
        for key, value in state.items():
            if key in names:
                setattr(self, key, value)
        self.__post_init__()


def get_kl_weight(step: int, schedule: KLSchedule) -> float:
    """The β for global ``step`` (0-based) under ``schedule``; a pure function of its inputs.

    Starts at ``min(beta_min, beta_max)`` and reaches ``beta_max`` at
    ``start_step + warmup_steps``; with ``beta_max == 0`` it is 0 throughout.
    """
    lo, hi = min(schedule.beta_min, schedule.beta_max), schedule.beta_max
    s = step - schedule.start_step
    if s < 0:
        return lo
    if schedule.warmup_steps <= 0 or s >= schedule.warmup_steps:
        return hi
    if schedule.mode == "linear":
        frac = s / schedule.warmup_steps
    else:
        cycle_len = schedule.warmup_steps / schedule.cycles
        pos = (s % cycle_len) / cycle_len
        frac = min(1.0, pos / schedule.ratio)
    return lo + (hi - lo) * frac


def _finite(value: float) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
