"""A small convolutional VAE on normalized log-mel chunks: ``ConvVAE`` in two latent layouts.

Input and output are ``[B, 1, n_mels, n_frames]`` in the normalized scale of
``AudioSpectrogram.normalize`` (floor -> 0, 0 dB -> 1). The latent is ``latent_dim`` floats per
chunk, laid out one of two ways (``latent_frames``):

- ``latent_frames = F``, "temporal" (what the presets use; ``TemporalEncoder`` and
  ``TemporalDecoder`` here): 1-D convs over time with the mel bands as channels, down to ``F``
  latent steps of ``latent_dim // F`` floats each, and back up. Every weight is shared across
  time, so each training chunk teaches the model ``F`` times over, and a sound shifted in time
  is the same code shifted. No normalisation layers: GroupNorm scales every chunk's activations
  to unit variance and throws away the level, which varies across a real folder of sounds. The
  decoder's output bias is per mel band and starts at the training set's mean level
  (``init_output_level``).
- ``None``, "flat" (the first design, kept for old checkpoints; ``flat.py``): 2-D convs down to
  a small grid, then one Linear to ``latent_dim`` floats for the whole chunk.

Both end in the bounded output function of ``heads.py``. The measurements behind these choices
are in bench/README.md, "Audio quality".
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from smalltrain.tasks.audio.config import temporal_steps_down
from smalltrain.tasks.audio.flat import ConvDecoder, ConvEncoder, channel_plan
from smalltrain.tasks.audio.heads import (
    INIT_LEVEL,
    LOGVAR_INIT,
    LOGVAR_MAX,
    LOGVAR_MIN,
    apply_output,
    check_output,
    preactivation,
)


def temporal_plan(n_frames: int, latent_frames: int) -> tuple[int, int]:
    """Return ``(n_down, padded_frames)``: stride-2 steps from the input to ``latent_frames``.

    The input is padded (with silence) to ``latent_frames * 2**n_down >= n_frames`` frames.
    """
    n_down = temporal_steps_down(n_frames, latent_frames)
    return n_down, latent_frames * 2**n_down


class TemporalEncoder(nn.Module):
    """Map ``[B, 1, n_mels, T]`` to ``(mu, logvar)``, each ``[B, channels * latent_frames]``.

    1-D convs over time, mel bands as input channels; the latent vector is the ``[channels,
    latent_frames]`` code flattened, channel-major.
    """

    def __init__(
        self, n_mels: int, n_frames: int, latent_frames: int, channels: int, width: int
    ) -> None:
        super().__init__()
        self.n_mels, self.n_frames, self.channels = n_mels, n_frames, channels
        n_down, self.padded = temporal_plan(n_frames, latent_frames)
        layers: list[nn.Module] = [nn.Conv1d(n_mels, width, 3, padding=1), nn.LeakyReLU(0.2)]
        for _ in range(n_down):
            layers += [nn.Conv1d(width, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        stats = nn.Conv1d(width, 2 * channels, 3, padding=1)
        _kaiming(layers)
        nn.init.kaiming_normal_(stats.weight, nonlinearity="linear")
        with torch.no_grad():  # start with a narrow posterior, see LOGVAR_INIT
            stats.bias.zero_()  # type: ignore[union-attr]
            stats.bias[channels:].fill_(LOGVAR_INIT)  # type: ignore[index]
        layers.append(stats)
        self.convs = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(mu, logvar)`` for a batch of normalized mels."""
        if x.dim() != 4 or x.shape[1] != 1 or x.shape[2] != self.n_mels:
            raise ValueError(
                f"expected mels of shape [B, 1, {self.n_mels}, T], got {list(x.shape)}"
            )
        if x.shape[3] > self.padded:
            raise ValueError(
                f"got {x.shape[3]} frames but the model was built for at most {self.padded}"
            )
        h = F.pad(x.squeeze(1), (0, self.padded - x.shape[3]))
        mu, logvar = self.convs(h).chunk(2, dim=1)
        return mu.flatten(1), logvar.clamp(LOGVAR_MIN, LOGVAR_MAX).flatten(1)


class TemporalDecoder(nn.Module):
    """Map ``z`` of ``[B, channels * latent_frames]`` to a mel ``[B, 1, n_mels, n_frames]``."""

    def __init__(
        self,
        n_mels: int,
        n_frames: int,
        latent_frames: int,
        channels: int,
        width: int,
        output: str = "sigmoid",
        output_max: float = 2.0,
    ) -> None:
        super().__init__()
        check_output(output, output_max)
        self.n_mels, self.n_frames = n_mels, n_frames
        self.latent_frames, self.channels = latent_frames, channels
        self.output, self.output_max = output, output_max
        n_down, _ = temporal_plan(n_frames, latent_frames)
        layers: list[nn.Module] = [nn.Conv1d(channels, width, 3, padding=1), nn.LeakyReLU(0.2)]
        for _ in range(n_down):
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv1d(width, width, 3, padding=1),
                nn.LeakyReLU(0.2),
            ]
        _kaiming(layers)
        head = nn.Conv1d(width, n_mels, 3, padding=1, bias=False)
        with torch.no_grad():
            head.weight.mul_(0.1)
        layers.append(head)
        self.convs = nn.Sequential(*layers)
        # the output level per mel band, before the output function; see init_output_level
        start = float(preactivation(INIT_LEVEL, output, output_max))
        self.level = nn.Parameter(torch.full((n_mels, 1), start))

    def forward(self, z: Tensor, n_frames: int | None = None) -> Tensor:
        """Decode ``z`` to a mel, cropped to ``n_frames`` (default: the model's)."""
        h = z.reshape(z.shape[0], self.channels, self.latent_frames)
        out = (self.convs(h)[:, :, : (n_frames or self.n_frames)] + self.level).unsqueeze(1)
        return apply_output(out, self.output, self.output_max)


class ConvVAE(nn.Module):
    """A convolutional VAE with ``latent_dim`` floats per chunk, temporal or flat layout.

    The layout follows ``latent_frames`` (see the module docstring); the presets build the
    temporal one through ``TrainingConfig.model_kwargs``, while this constructor's default
    (``latent_frames=None``) is the flat one.

    Args:
        n_mels: mel bands of the input.
        n_frames: frames per chunk; inputs may have fewer (they are padded, and the output is
            cropped back to the input's length), never more.
        latent_dim: floats per chunk in the latent.
        width: temporal: channels of every layer; flat: channels of the first conv layer, each
            layer doubling it, capped at 8x.
        n_layers: flat only: stride-2 conv layers (downsampling by ``2**n_layers``); the
            temporal layout's depth follows from the frame count.
        capacity: multiplier on every channel count (None = 1.0); 0.125 makes a ~30k-parameter
            test model.
        output: "sigmoid" (default, see the module docstring), "softplus" or "linear".
        output_max: the upper bound of the sigmoid output, in normalized units.
        latent_frames: None for the flat layout; else the temporal layout with this many latent
            steps of ``latent_dim // latent_frames`` floats (``latent_dim`` must be a multiple).
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
        latent_frames: int | None = None,
    ) -> None:
        super().__init__()
        sizes = {"n_mels": n_mels, "n_frames": n_frames, "latent_dim": latent_dim,
                 "width": width, "n_layers": n_layers}  # fmt: skip
        _check_args(sizes, capacity, latent_frames)
        self._init_args: dict[str, Any] = {
            **sizes,
            "capacity": None if capacity is None else float(capacity),
            "output": output,
            "output_max": float(output_max),
        }
        self.latent_dim = latent_dim
        self.latent_frames = latent_frames
        self.encoder: ConvEncoder | TemporalEncoder
        self.decoder: ConvDecoder | TemporalDecoder
        if latent_frames is None:
            channels, bottleneck = channel_plan(width, n_layers, capacity)
            self.encoder = ConvEncoder(n_mels, n_frames, latent_dim, channels, bottleneck)
            self.decoder = ConvDecoder(
                n_mels, n_frames, latent_dim, channels, bottleneck, output, output_max
            )
        else:
            self._init_args["latent_frames"] = latent_frames  # absent = flat, as old models
            w = max(1, round(width * (1.0 if capacity is None else capacity)))
            code = latent_dim // latent_frames
            self.encoder = TemporalEncoder(n_mels, n_frames, latent_frames, code, w)
            self.decoder = TemporalDecoder(
                n_mels, n_frames, latent_frames, code, w, output, output_max
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

    @property
    def layout(self) -> str:
        """ "temporal" or "flat" (see the module docstring)."""
        return "flat" if self.latent_frames is None else "temporal"

    @torch.no_grad()
    def init_output_level(self, mean_mel: Tensor) -> None:
        """Start the decoder at the training set's mean level per mel band (temporal layout).

        ``mean_mel``: ``[n_mels]`` normalized values, e.g. ``train_mels.mean(dim=(0, 2))``.
        Call it on a fresh model before training; the flat layout keeps its fixed start.
        """
        if isinstance(self.decoder, TemporalDecoder):
            level = preactivation(mean_mel.detach().float().cpu(), self.decoder.output,
                                   self.decoder.output_max)  # fmt: skip
            self.decoder.level.copy_(level.reshape(-1, 1).to(self.decoder.level.device))

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def _check_args(sizes: dict[str, int], capacity: float | None, latent_frames: int | None) -> None:
    """Raise ValueError for a ConvVAE argument that breaks its rule."""
    for name, value in sizes.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"ConvVAE {name}={value!r}: must be an integer >= 1")
    if capacity is not None and not capacity > 0:
        raise ValueError(f"ConvVAE capacity={capacity!r}: must be > 0 or None")
    latent_dim = sizes["latent_dim"]
    if latent_frames is not None and (
        not isinstance(latent_frames, int) or latent_frames < 1 or latent_dim % latent_frames
    ):
        raise ValueError(
            f"ConvVAE latent_frames={latent_frames!r}: must be None or a whole divisor of "
            f"latent_dim={latent_dim}"
        )


def _kaiming(layers: list[nn.Module]) -> None:
    """He initialisation for convs followed by LeakyReLU(0.2), zero biases.

    Without normalisation layers, PyTorch's default init shrinks activations about 3x per
    layer: a fresh temporal encoder's codes then differ between chunks far less than the
    sampling noise, and the decoder cannot tell chunks apart for hundreds of steps.
    """
    for layer in layers:
        if isinstance(layer, nn.Conv1d):
            nn.init.kaiming_normal_(layer.weight, a=0.2, nonlinearity="leaky_relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
