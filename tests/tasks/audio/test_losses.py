"""vae_loss, compute_kl_divergence, spectral_convergence, KLSchedule and get_kl_weight."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from smalltrain.errors import ConfigError
from smalltrain.tasks.audio.model.losses import (
    KLSchedule,
    compute_kl_divergence,
    floor_l1,
    get_kl_weight,
    spectral_convergence,
    vae_loss,
)


def test_floor_l1_lets_silence_go_below_the_floor() -> None:
    target = torch.tensor([0.0, 0.0, 0.5, 0.5])
    pred = torch.tensor([-0.3, 0.2, 0.4, -0.1])
    # at the floor: below it is free, above it costs; above the floor: plain |error|
    assert floor_l1(pred, target).item() == pytest.approx((0 + 0.2 + 0.1 + 0.6) / 4)
    positive = torch.rand(3, 8)
    targets = torch.rand(3, 8) * (torch.rand(3, 8) > 0.5)
    torch.testing.assert_close(floor_l1(positive, targets), (positive - targets).abs().mean())


def test_kl_mask_leaves_deterministic_floats_out() -> None:
    mu, logvar = torch.ones(2, 3), torch.full((2, 3), -20.0)
    full = compute_kl_divergence(mu, logvar)
    masked = compute_kl_divergence(mu, logvar, torch.tensor([1.0, 1.0, 0.0]))
    assert masked.item() == pytest.approx(full.item() * 2 / 3)


def test_kl_of_standard_normal_is_zero() -> None:
    mu, logvar = torch.zeros(4, 64), torch.zeros(4, 64)
    assert compute_kl_divergence(mu, logvar).item() == 0.0


def test_kl_of_unit_mean_is_half_latent_dim() -> None:
    mu, logvar = torch.ones(3, 64), torch.zeros(3, 64)
    assert compute_kl_divergence(mu, logvar).item() == pytest.approx(0.5 * 64)


def test_kl_known_value_with_variance() -> None:
    # per dim: 0.5 * (sigma^2 + mu^2 - 1 - log sigma^2) with sigma^2 = e, mu = 0 -> 0.5 * (e - 2)
    logvar = torch.ones(2, 8)
    assert compute_kl_divergence(torch.zeros(2, 8), logvar).item() == pytest.approx(
        8 * 0.5 * (math.e - 2), rel=1e-6
    )


def test_sc_of_identical_inputs_is_zero() -> None:
    x = torch.rand(3, 1, 16, 10)
    assert spectral_convergence(x, x).item() == 0.0


@pytest.mark.parametrize("gain_db", [6.0, -10.0, 20.0])
def test_sc_of_a_constant_gain_is_worked_out_by_hand(gain_db: float) -> None:
    # S_hat = a * S with a = 10 ** (gain_db / 20), so SC = ||S - aS|| / ||S|| = |1 - a|.
    # In the normalized scale a gain of g dB adds g / 80 (floor -80 dB).
    x = torch.rand(2, 1, 16, 10, dtype=torch.float64) * 0.8
    x_hat = x + gain_db / 80.0
    expected = abs(1.0 - 10 ** (gain_db / 20.0))
    assert spectral_convergence(x_hat, x, floor_db=-80.0).item() == pytest.approx(expected)
    # the same from dB inputs
    db, db_hat = x * 80 - 80, x_hat * 80 - 80
    sc_db = spectral_convergence(db_hat, db, normalized=False)
    assert sc_db.item() == pytest.approx(expected)


def test_sc_is_per_sample_then_mean_and_differentiable() -> None:
    x = torch.rand(2, 1, 8, 4)
    x_hat = x.clone()
    x_hat[1] += 20.0 / 80.0  # sample 1 is 10x louder: SC 9; sample 0 exact: SC 0
    x_hat.requires_grad_(True)
    per = spectral_convergence(x_hat, x, reduction="none")
    torch.testing.assert_close(per.detach(), torch.tensor([0.0, 9.0]), rtol=1e-5, atol=1e-6)
    spectral_convergence(x_hat, x).backward()
    assert x_hat.grad is not None
    assert torch.isfinite(x_hat.grad).all()


def test_vae_loss_terms() -> None:
    x = torch.rand(2, 1, 8, 4)
    x_hat = (x + 0.1).requires_grad_(True)
    mu, logvar = torch.ones(2, 4), torch.zeros(2, 4)
    out = vae_loss(x_hat, x, mu, logvar, beta=0.5, sc_weight=2.0)
    assert set(out) == {"loss", "recon", "l1", "sc", "kl"}
    assert all(isinstance(v, torch.Tensor) and v.dim() == 0 for v in out.values())
    assert out["l1"].item() == pytest.approx(0.1, rel=1e-5)
    assert out["sc"].item() == pytest.approx(10 ** (8 / 20) - 1, rel=1e-4)
    assert out["kl"].item() == pytest.approx(2.0)
    assert out["recon"].item() == pytest.approx(out["l1"].item() + 2.0 * out["sc"].item())
    assert out["loss"].item() == pytest.approx(out["recon"].item() + 0.5 * 2.0)
    out["loss"].backward()
    assert x_hat.grad is not None


def test_vae_loss_without_sc_weight_is_l1_plus_beta_kl() -> None:
    x = torch.rand(2, 1, 8, 4)
    out = vae_loss(x * 0.5, x, torch.zeros(2, 4), torch.zeros(2, 4), beta=1.0)
    assert out["recon"].item() == pytest.approx(out["l1"].item())
    assert out["sc"].item() > 0  # still reported


def test_linear_ramp_values() -> None:
    s = KLSchedule(beta_max=1e-3, warmup_steps=100, mode="linear", beta_min=1e-6)
    assert get_kl_weight(0, s) == pytest.approx(1e-6)
    assert get_kl_weight(50, s) == pytest.approx(1e-6 + (1e-3 - 1e-6) / 2)
    assert get_kl_weight(100, s) == pytest.approx(1e-3)
    assert get_kl_weight(10_000, s) == pytest.approx(1e-3)
    assert s(50) == get_kl_weight(50, s)


def test_beta_starts_near_zero_but_not_zero() -> None:
    s = KLSchedule(beta_max=1e-4, warmup_steps=10)
    assert 0 < get_kl_weight(0, s) <= 1e-6
    assert get_kl_weight(0, KLSchedule(beta_max=1e-4, warmup_steps=10, beta_min=0.0)) == 0.0
    assert get_kl_weight(0, KLSchedule(beta_max=0.0, warmup_steps=10)) == 0.0  # plain AE


def test_start_step_delays_the_ramp() -> None:
    s = KLSchedule(beta_max=1.0, warmup_steps=10, beta_min=0.0, start_step=5)
    assert get_kl_weight(3, s) == 0.0
    assert get_kl_weight(10, s) == pytest.approx(0.5)
    assert get_kl_weight(15, s) == 1.0


def test_cyclical_ramps_within_each_cycle_and_repeats() -> None:
    s = KLSchedule(beta_max=1.0, warmup_steps=400, mode="cyclical", cycles=4, ratio=0.5, beta_min=0)
    # cycle length 100: ramp over the first 50 steps, hold for the next 50
    first = [get_kl_weight(t, s) for t in range(100)]
    assert first[0] == 0.0
    assert first[25] == pytest.approx(0.5)
    assert first[50] == first[99] == 1.0
    for cycle in range(1, 4):
        assert [get_kl_weight(cycle * 100 + t, s) for t in range(100)] == pytest.approx(first)
    assert get_kl_weight(400, s) == get_kl_weight(5000, s) == 1.0  # after the span: hold


def test_schedule_state_round_trip() -> None:
    s = KLSchedule(beta_max=2e-4, warmup_steps=77, mode="cyclical", cycles=3, start_step=4)
    t = KLSchedule()
    t.load_state_dict(s.state_dict())
    assert t == s
    assert [get_kl_weight(i, t) for i in range(0, 200, 7)] == [
        get_kl_weight(i, s) for i in range(0, 200, 7)
    ]


def test_schedule_from_config_converts_epochs_to_steps() -> None:
    cfg = SimpleNamespace(
        kl_beta_max=1e-4, kl_warmup_epochs=10, kl_schedule="cyclical", kl_cycles=2
    )
    s = KLSchedule.from_config(cfg, steps_per_epoch=7)
    assert (s.warmup_steps, s.mode, s.cycles, s.beta_max) == (70, "cyclical", 2, 1e-4)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"beta_max": -1.0}, "beta_max"),
        ({"warmup_steps": -5}, "warmup_steps"),
        ({"mode": "cosine"}, "mode"),
        ({"cycles": 0}, "cycles"),
        ({"ratio": 0.0}, "ratio"),
    ],
)
def test_invalid_schedule_raises_config_error(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        KLSchedule(**kwargs)
    assert info.value.field == field
