"""The device-side update the CUDA path uses (``found_inf`` for a fused AdamW, no host sync),
run here on the CPU, where torch's fused AdamW takes the same ``found_inf`` route. The whole
CUDA path, syncs counted, is ``test_cuda_train.py`` (skipped without a GPU)."""

from __future__ import annotations

import torch

from smalltrain.tasks.audio.training.epoch import _device_checked_update
from tests.tasks.audio.test_train import _state, tiny_config


def test_a_nan_loss_leaves_weights_and_step_counts_alone_and_a_finite_one_updates() -> None:
    cfg = tiny_config()
    state = _state(cfg)
    state.optimizer = torch.optim.AdamW(state.model.parameters(), lr=1e-2, fused=True)
    x = torch.rand(2, 1, cfg.n_mels, cfg.n_frames)

    def loss_of(poison: bool) -> torch.Tensor:
        x_hat, _, _ = state.model(x)
        loss = (x_hat - x).abs().mean()
        return loss * float("nan") if poison else loss

    assert bool(_device_checked_update(state, loss_of(False)))
    before = {k: v.clone() for k, v in state.model.state_dict().items()}
    assert not bool(_device_checked_update(state, loss_of(True)))
    after = state.model.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in before)  # skipped on the device
    assert {int(s["step"]) for s in state.optimizer.state.values()} == {1}
    assert bool(_device_checked_update(state, loss_of(False)))
    assert {int(s["step"]) for s in state.optimizer.state.values()} == {2}
    assert any(not torch.equal(state.model.state_dict()[k], before[k]) for k in before)
