"""A small convolutional VAE on normalized log-mel chunks: ConvEncoder, ConvDecoder, ConvVAE.

Input and output are ``[B, 1, n_mels, n_frames]`` in the normalized scale of
``AudioSpectrogram.normalize`` (floor -> 0, 0 dB -> 1). The latent is flat: ``latent_dim`` floats
per chunk.

Shape of the network (``L = n_layers``, ``w = width * capacity``)::

    x -> pad to multiples of 2**L -> L x [Conv3x3 stride 2 -> GroupNorm -> LeakyReLU]
      -> Conv1x1 to a few "bottleneck" channels -> flatten -> Linear -> (mu, logvar)
    z -> Linear -> Conv1x1 -> L x [nearest upsample x2 -> Conv3x3 -> GroupNorm -> LeakyReLU]
      -> Conv3x3 to 1 channel -> output_max * sigmoid -> crop to the input size

Channel ``i`` of the encoder has ``w * 2**i`` channels, capped at ``8 * w``. The 1x1 bottleneck
(``max(2, w // 2)`` channels) keeps the flattening Linear small: on 60 to 600 training chunks a
multi-million-parameter Linear only memorises.

No BatchNorm: GroupNorm behaves the same for batch size 1 and in train and eval mode.

Why a bounded sigmoid output, ``output_max * sigmoid`` with ``output_max = 2``: normalized mels
are NOT capped at 1. 0 dB is only the power reference, and loud audio reaches about +40 dB (x up
to ~1.5; 9% of the values of the shared sonic_pi set lie above 1), so a plain sigmoid cannot
reach the loudest bins, which dominate spectral convergence (clamping targets at 1 alone costs
SC 0.8). An unbounded linear output can overshoot: the SC term works on ``10 ** (dB / 20)``,
exponential in the output, and its gradient explodes. On 51 sonic_pi chunks (400 steps, width 16,
no augmentation) sigmoid x 2 fitted the training chunks best in three paired runs (train SC 0.53
to 0.63 against 0.63 to 0.64 for softplus; linear 0.82); held-out SC on 13 chunks was too noisy
to separate sigmoid and softplus (0.90 to 1.47 against 0.85 to 1.08; PCA-51: 0.81). ``output``
may be "softplus" or "linear" for experiments.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LOGVAR_MIN = -20.0  # clamp logvar so exp() never under/overflows in float32 (std in [4.5e-5, 150])
LOGVAR_MAX = 10.0
# Initial logvar (std 0.05). With logvar 0 the sampled z is pure unit noise until the encoder
# learns to shrink it, and the decoder cannot tell chunks apart; the tiny beta (~1e-4) used here
# would narrow the posterior anyway. On a 4-mel overfit test this halves the loss 3x faster.
LOGVAR_INIT = -6.0
OUTPUTS = ("sigmoid", "softplus", "linear")
INIT_LEVEL = 0.4  # initial output, normalized (-48 dB at floor -80): about the mean of real mels


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
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, not {output!r}")
        if not output_max > 0:
            raise ValueError(f"output_max must be > 0, not {output_max!r}")
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
        if self.output == "sigmoid":
            return self.output_max * torch.sigmoid(out)
        return F.softplus(out) if self.output == "softplus" else out


class ConvVAE(nn.Module):
    """A convolutional VAE with a flat latent of ``latent_dim`` floats per chunk.

    Args:
        n_mels: mel bands of the input.
        n_frames: frames per chunk; inputs may have fewer (they are padded, and the output is
            cropped back to the input's length), never more.
        latent_dim: floats per chunk in the latent.
        width: channels of the first conv layer; each layer doubles it, capped at 8x.
        n_layers: stride-2 conv layers (downsampling by ``2**n_layers``).
        capacity: multiplier on every channel count (None = 1.0); 0.125 makes a ~30k-parameter
            test model.
        output: "sigmoid" (default, see the module docstring), "softplus" or "linear".
        output_max: the upper bound of the sigmoid output, in normalized units.
    """

    def __init__(
        self,
        n_mels: int = 128,
        n_frames: int = 94,
        latent_dim: int = 64,
        width: int = 32,
        n_layers: int = 4,
        capacity: float | None = None,
        output: str = "sigmoid",
        output_max: float = 2.0,
    ) -> None:
        super().__init__()
        for name, value in (("n_mels", n_mels), ("n_frames", n_frames), ("latent_dim", latent_dim),
                            ("width", width), ("n_layers", n_layers)):  # fmt: skip
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"ConvVAE {name}={value!r}: must be an integer >= 1")
        if capacity is not None and not capacity > 0:
            raise ValueError(f"ConvVAE capacity={capacity!r}: must be > 0 or None")
        self._init_args: dict[str, Any] = {
            "n_mels": n_mels,
            "n_frames": n_frames,
            "latent_dim": latent_dim,
            "width": width,
            "n_layers": n_layers,
            "capacity": None if capacity is None else float(capacity),
            "output": output,
            "output_max": float(output_max),
        }
        self.latent_dim = latent_dim
        channels, bottleneck = channel_plan(width, n_layers, capacity)
        self.encoder = ConvEncoder(n_mels, n_frames, latent_dim, channels, bottleneck)
        self.decoder = ConvDecoder(
            n_mels, n_frames, latent_dim, channels, bottleneck, output, output_max
        )

    @property
    def init_args(self) -> dict[str, Any]:
        """Constructor arguments as plain JSON types; ``from_init_args`` rebuilds the model."""
        return dict(self._init_args)

    @classmethod
    def from_init_args(cls, args: dict[str, Any]) -> ConvVAE:
        """Rebuild an (untrained) model from ``init_args``; load the state dict afterwards."""
        return cls(**args)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(mu, logvar)``, each ``[B, latent_dim]``."""
        mu, logvar = self.encoder(x)
        return mu, logvar

    @staticmethod
    def reparameterize(
        mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """Sample ``z = mu + std * eps``.

        With ``generator=None`` the noise comes from the global torch RNG, so
        ``torch.manual_seed`` (and a restored RNG state) reproduces it exactly.
        """
        std = torch.exp(0.5 * logvar)
        if generator is None:
            eps = torch.randn_like(std)
        else:
            eps = torch.randn(std.shape, generator=generator, device=std.device, dtype=std.dtype)
        return mu + std * eps

    def decode(self, z: Tensor, n_frames: int | None = None) -> Tensor:
        """Decode ``[B, latent_dim]`` to ``[B, 1, n_mels, n_frames]`` (default: the model's)."""
        return self.decoder(z, n_frames)

    def forward(
        self, x: Tensor, generator: torch.Generator | None = None, sample: bool | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Return ``(x_hat, mu, logvar)``; ``x_hat`` has the shape of ``x``.

        ``sample`` defaults to ``self.training``: training draws ``z`` (one draw from the RNG);
        eval mode decodes ``z = mu``, a deterministic reconstruction that uses no randomness.
        """
        mu, logvar = self.encode(x)
        if sample is None:
            sample = self.training
        z = self.reparameterize(mu, logvar, generator) if sample else mu
        return self.decode(z, x.shape[-1]), mu, logvar

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def _init_head(head: nn.Conv2d, output: str, output_max: float) -> None:
    """Start every output near ``INIT_LEVEL``, low and nearly flat.

    SC punishes overshoot exponentially (+20 dB is 10x the magnitude) but undershoot at most
    1.0, so a model that starts at a middle level with random +-30 dB bumps begins with an SC in
    the thousands and spends its first hundreds of steps unlearning them.
    """
    level = min(INIT_LEVEL, 0.5 * output_max)
    if output == "sigmoid":
        bias = math.log(level / (output_max - level))
    else:
        bias = math.log(math.expm1(level)) if output == "softplus" else level
    with torch.no_grad():
        head.weight.mul_(0.1)
        if head.bias is not None:
            head.bias.fill_(bias)


def _round_up(n: int, multiple: int) -> int:
    return int(math.ceil(n / multiple) * multiple)
