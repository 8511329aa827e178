"""The flat latent layout: ``ConvEncoder`` and ``ConvDecoder`` (the first design, for old models).

``ConvVAE(latent_frames=None)`` builds them (see ``model.py``); the presets use the temporal
layout. 2-D convs go down to a small grid, then one Linear maps it to ``latent_dim`` floats for
the whole chunk. Shape of the network (``L = n_layers``, ``w = width * capacity``)::

    x -> pad to multiples of 2**L -> L x [Conv3x3 stride 2 -> GroupNorm -> LeakyReLU]
      -> Conv1x1 to a few "bottleneck" channels -> flatten -> Linear -> (mu, logvar)
    z -> Linear -> Conv1x1 -> L x [nearest upsample x2 -> Conv3x3 -> GroupNorm -> LeakyReLU]
      -> Conv3x3 to 1 channel -> output_max * sigmoid -> crop to the input size

Channel ``i`` of the encoder has ``w * 2**i`` channels, capped at ``8 * w``. The 1x1 bottleneck
(``max(2, w // 2)`` channels) keeps the flattening Linear small: on 60 to 600 training chunks a
multi-million-parameter Linear only memorises. GroupNorm, not BatchNorm: it behaves the same for
batch size 1 and in train and eval mode.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from smalltrain.tasks.audio.model.heads import (
    INIT_LEVEL,
    LOGVAR_INIT,
    LOGVAR_MAX,
    LOGVAR_MIN,
    apply_output,
    check_output,
    preactivation,
)


def _groups(channels: int) -> int:
    """The largest group count in (8, 4, 2, 1) that divides ``channels``."""
    return next(g for g in (8, 4, 2, 1) if channels % g == 0)


def channel_plan(width: int, n_layers: int, capacity: float | None) -> tuple[list[int], int]:
    """Return the per-layer channel counts and the bottleneck channel count.

    ``capacity`` scales every channel count (None means 1.0), so ``capacity=0.125`` turns the
    default width 32 into a model of about 30k parameters for tests.
    """
    w = max(1, round(width * (1.0 if capacity is None else capacity)))
    channels = [min(w * 2**i, 8 * w) for i in range(n_layers)]
    return channels, max(2, w // 2)


def _block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1),
        nn.GroupNorm(_groups(c_out), c_out),
        nn.LeakyReLU(0.2),
    )


class ConvEncoder(nn.Module):
    """Map ``[B, 1, n_mels, n_frames]`` to ``(mu, logvar)``, each ``[B, latent_dim]``.

    Pads the input with zeros (the normalized floor: silence) up to multiples of ``2**n_layers``.
    """

    def __init__(
        self,
        n_mels: int,
        n_frames: int,
        latent_dim: int,
        channels: list[int],
        bottleneck: int,
    ) -> None:
        super().__init__()
        self.n_mels, self.n_frames = n_mels, n_frames
        factor = 2 ** len(channels)
        self.padded = (_round_up(n_mels, factor), _round_up(n_frames, factor))
        self.grid = (self.padded[0] // factor, self.padded[1] // factor)
        layers: list[nn.Module] = []
        c_in = 1
        for c in channels:
            layers.append(_block(c_in, c, stride=2))
            c_in = c
        layers.append(nn.Conv2d(c_in, bottleneck, kernel_size=1))
        layers.append(nn.LeakyReLU(0.2))
        self.convs = nn.Sequential(*layers)
        self.to_stats = nn.Linear(bottleneck * self.grid[0] * self.grid[1], 2 * latent_dim)
        with torch.no_grad():  # start with a narrow posterior, see LOGVAR_INIT
            self.to_stats.bias[latent_dim:].fill_(LOGVAR_INIT)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(mu, logvar)`` for a batch of normalized mels."""
        if x.dim() != 4 or x.shape[1] != 1 or x.shape[2] != self.n_mels:
            raise ValueError(
                f"expected mels of shape [B, 1, {self.n_mels}, T], got {list(x.shape)}"
            )
        if x.shape[3] > self.padded[1]:
            raise ValueError(
                f"got {x.shape[3]} frames but the model was built for at most {self.padded[1]}"
            )
        x = F.pad(x, (0, self.padded[1] - x.shape[3], 0, self.padded[0] - x.shape[2]))
        h = self.convs(x).flatten(1)
        mu, logvar = self.to_stats(h).chunk(2, dim=1)
        return mu, logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)


class ConvDecoder(nn.Module):
    """Map ``z`` of ``[B, latent_dim]`` to a mel ``[B, 1, n_mels, n_frames]``."""

    def __init__(
        self,
        n_mels: int,
        n_frames: int,
        latent_dim: int,
        channels: list[int],
        bottleneck: int,
        output: str = "sigmoid",
        output_max: float = 2.0,
    ) -> None:
        super().__init__()
        check_output(output, output_max)
        self.n_mels, self.n_frames = n_mels, n_frames
        self.output, self.output_max = output, output_max
        factor = 2 ** len(channels)
        self.grid = (_round_up(n_mels, factor) // factor, _round_up(n_frames, factor) // factor)
        self.bottleneck = bottleneck
        self.from_latent = nn.Linear(latent_dim, bottleneck * self.grid[0] * self.grid[1])
        rev = channels[::-1]
        layers: list[nn.Module] = [nn.LeakyReLU(0.2), nn.Conv2d(bottleneck, rev[0], kernel_size=1)]
        for c_in, c_out in zip(rev, [*rev[1:], rev[-1]], strict=True):
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
            layers.append(_block(c_in, c_out, stride=1))
        head = nn.Conv2d(rev[-1], 1, kernel_size=3, padding=1)
        _init_head(head, output, output_max)
        layers.append(head)
        self.convs = nn.Sequential(*layers)

    def forward(self, z: Tensor, n_frames: int | None = None) -> Tensor:
        """Decode ``z`` to a mel, cropped to ``n_frames`` (default: the model's)."""
        h = self.from_latent(z).view(z.shape[0], self.bottleneck, *self.grid)
        out = self.convs(h)[:, :, : self.n_mels, : (n_frames or self.n_frames)]
        return apply_output(out, self.output, self.output_max)


def _init_head(head: nn.Conv2d, output: str, output_max: float) -> None:
    """Start every output near ``INIT_LEVEL``, low and nearly flat.

    SC punishes overshoot exponentially (+20 dB is 10x the magnitude) but undershoot at most
    1.0, so a model that starts at a middle level with random +-30 dB bumps begins with an SC in
    the thousands and spends its first hundreds of steps unlearning them.
    """
    bias = float(preactivation(min(INIT_LEVEL, 0.5 * output_max), output, output_max))
    with torch.no_grad():
        head.weight.mul_(0.1)
        if head.bias is not None:
            head.bias.fill_(bias)


def _round_up(n: int, multiple: int) -> int:
    return int(math.ceil(n / multiple) * multiple)
