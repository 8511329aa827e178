"""A small convolutional VAE on normalized log-mel chunks: ``ConvVAE`` in two latent layouts.

Input and output are ``[B, 1, n_mels, n_frames]`` in the normalized scale of
``AudioSpectrogram.normalize`` (floor -> 0, 0 dB -> 1). The latent is ``latent_dim`` floats per
chunk, laid out one of two ways (``latent_frames``):

- ``latent_frames = F``, "temporal" (what the presets use; ``temporal.py``): 1-D convs over
  time with the mel bands as channels, down to ``F`` latent steps, and back up, optionally with
  a code for the whole chunk (``global_dim``) and the chunk's peak level as one float (``gain``).
  The decoder's output bias is per mel band and starts at the training set's mean level
  (``init_output_level``).
- ``None``, "flat" (the first design, kept for old checkpoints; ``flat.py``): 2-D convs down to
  a small grid, then one Linear to ``latent_dim`` floats for the whole chunk.

Both end in the bounded output function of ``heads.py``. The measurements behind these choices
are in bench/README.md, "Audio quality".
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from smalltrain.tasks.audio.model.flat import ConvDecoder, ConvEncoder, channel_plan
from smalltrain.tasks.audio.model.temporal import (
    LinearPath,
    TemporalCode,
    TemporalDecoder,
    TemporalEncoder,
    chunk_gain,
    temporal_plan,
)

__all__ = ["ConvVAE", "TemporalDecoder", "TemporalEncoder", "temporal_plan"]


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
            steps of ``(latent_dim - global_dim - gain) // latent_frames`` floats each.
        global_dim: temporal only: floats of ``latent_dim`` that code the whole chunk.
        gain: temporal only: one float of ``latent_dim`` is the chunk's peak level, and the
            decoder's output is relative to it (see temporal.py).
        gain_tilt: with ``gain``: the level also moves the spectrum's balance, a learned dB
            per mel band per unit of level (softer strokes are darker), zero at the start.
        linear_path: temporal only: the code is PCA of the chunk plus what the encoder adds,
            and the output PCA's decoding of it plus what the decoder adds (``LinearPath`` in
            temporal.py); fit it with ``init_linear_path`` before training.
        envelopes: temporal only: the decoder adds a spectral shape per chunk and a gain curve
            per frame (in dB, so shape x gain in magnitude), zero at the start.
        gain_input: with ``gain``: the decoder also gets the level as an input channel, so it
            knows how far below the chunk's peak the floor (silence) lies.
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
        global_dim: int = 0,
        gain: bool = False,
        gain_tilt: bool = False,
        linear_path: bool = False,
        envelopes: bool = False,
        gain_input: bool = False,
    ) -> None:
        super().__init__()
        sizes = {"n_mels": n_mels, "n_frames": n_frames, "latent_dim": latent_dim,
                 "width": width, "n_layers": n_layers}  # fmt: skip
        _check_args(sizes, capacity, latent_frames, global_dim + int(gain))
        if (linear_path or envelopes) and latent_frames is None:
            raise ValueError("ConvVAE linear_path and envelopes need the temporal layout")
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
            if global_dim or gain:  # absent in models from before these parts existed
                self._init_args.update(global_dim=global_dim, gain=bool(gain))
            if gain_tilt:
                self._init_args["gain_tilt"] = True
            linear = LinearPath(n_mels, n_frames, latent_dim - int(gain)) if linear_path else None
            if linear_path:
                self._init_args["linear_path"] = True
            if envelopes:
                self._init_args["envelopes"] = True
            if gain_input:
                self._init_args["gain_input"] = True
            w = max(1, round(width * (1.0 if capacity is None else capacity)))
            per_step = (latent_dim - global_dim - int(gain)) // latent_frames
            code = TemporalCode(latent_frames, per_step, global_dim, bool(gain))
            self.encoder = TemporalEncoder(n_mels, n_frames, code, w, linear)
            tilt, fed = bool(gain and gain_tilt), bool(gain and gain_input)
            self.decoder = TemporalDecoder(n_mels, n_frames, code, w, output, output_max, tilt,
                                           linear, envelopes, fed)  # fmt: skip

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

    @property
    def code(self) -> TemporalCode | None:
        """The temporal layout's latent layout; None for the flat layout."""
        return self.decoder.code if isinstance(self.decoder, TemporalDecoder) else None

    @property
    def kl_mask(self) -> Tensor | None:
        """1 for the latent floats the KL term covers, 0 for the deterministic gain; or None."""
        code = self.code
        if code is None or not code.gain:
            return None
        mask = torch.ones(self.latent_dim, device=next(self.parameters()).device)
        mask[-1] = 0.0
        return mask

    @torch.no_grad()
    def mean_level(self, mels: Tensor) -> Tensor:
        """The mean level per mel band ``[n_mels]`` of normalized mels ``[N, n_mels, T]``, as
        ``init_output_level`` takes it (relative to each chunk's peak for a gain model)."""
        x = mels.reshape(-1, *mels.shape[-2:]).float()
        code = self.code
        if code is not None and code.gain:
            x = x - chunk_gain(x)
        return x.mean(dim=(0, 2))

    @torch.no_grad()
    def init_output_level(self, mean_mel: Tensor) -> None:
        """Start the decoder at the training set's mean level per mel band (temporal layout).

        ``mean_mel``: ``[n_mels]`` normalized values, ``mean_level(train_mels)``. Call it on a
        fresh model before training; the flat layout keeps its fixed start.
        """
        if isinstance(self.decoder, TemporalDecoder):
            self.decoder.init_level(mean_mel)

    @property
    def linear_path(self) -> LinearPath | None:
        """The PCA part shared by encoder and decoder (``linear_path=True``), or None."""
        return self.decoder.linear if isinstance(self.decoder, TemporalDecoder) else None

    @torch.no_grad()
    def init_linear_path(self, mels: Tensor, seed: int = 0) -> int:
        """Fit the linear path on normalized training mels ``[N, n_mels, T]`` (relative to each
        chunk's peak for a gain model); return the PCA components used (0 without the path).
        Call it on a fresh model before training."""
        linear = self.linear_path
        if linear is None:
            return 0
        x = mels.reshape(-1, *mels.shape[-2:]).float()
        code = self.code
        if code is not None and code.gain:
            x = x - chunk_gain(x)
        return linear.fit(x, seed)

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def _check_args(
    sizes: dict[str, int], capacity: float | None, latent_frames: int | None, whole: int
) -> None:
    """Raise ValueError for a ConvVAE argument that breaks its rule (``whole``: the floats
    of the latent that are not per step: global code and gain)."""
    for name, value in sizes.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"ConvVAE {name}={value!r}: must be an integer >= 1")
    if capacity is not None and not capacity > 0:
        raise ValueError(f"ConvVAE capacity={capacity!r}: must be > 0 or None")
    per_step = sizes["latent_dim"] - whole
    if latent_frames is None and whole:
        raise ValueError("ConvVAE global_dim and gain need the temporal layout (latent_frames)")
    if latent_frames is not None and (
        not isinstance(latent_frames, int)
        or latent_frames < 1
        or per_step < latent_frames
        or per_step % latent_frames
    ):
        raise ValueError(
            f"ConvVAE latent_frames={latent_frames!r}: must be None or a whole divisor of "
            f"latent_dim={sizes['latent_dim']} less global_dim and gain ({per_step})"
        )
