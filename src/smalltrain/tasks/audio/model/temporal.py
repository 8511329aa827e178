"""The temporal latent layout: ``TemporalEncoder`` and ``TemporalDecoder`` (what presets use).

1-D convs over time with the mel bands as channels, down to ``frames`` latent steps of
``channels`` floats each, and back up. Every weight is shared across time, so each training
chunk teaches the model ``frames`` times over, and a sound shifted in time is the same code
shifted. No normalisation layers: GroupNorm scales every chunk's activations to unit variance
and throws away the level, which varies across a real folder of sounds.

Two optional parts of the code (``TemporalCode``), measured on real one-shot kits
(bench/README.md, "Audio quality"):

- ``gain``: one float, the chunk's peak level (normalized dB of its loudest bin), taken from the
  input rather than learned. The encoder sees the chunk with that level subtracted and the
  decoder adds it back to a *relative* output, so the same hit at -15 or -30 dB is the same
  shape, exactly shifted in dB, as it is for PCA. Without it the network has to learn dB shifts
  through its output nonlinearity, one velocity layer at a time.
- ``global_dim``: floats for the whole chunk, from the encoder's last layer pooled over time
  (mean and max) and fed to every step of the decoder. A one-shot puts most of its detail in
  its first 100 ms; steps of equal length spend the same floats on the attack as on the
  silence after it, while a global code can describe the attack's spectrum wherever it is.

The latent vector is ``[temporal (channel-major), global, gain]``. The gain float is
deterministic: its ``logvar`` is pinned at ``LOGVAR_MIN`` and ``kl_mask`` leaves it out of
the KL term.

``LinearPath`` (ConvVAE's ``linear_path``, off by default): PCA of the training chunks (relative
to their peak for a gain model) inside the network. The encoder's code is the whitened PCA
coefficients of the chunk plus what the convs add; the decoder's output is the PCA decoding of
the code plus what the convs add (their last layer starts at zero), so a fresh model is PCA of
its code size and the convs learn only what PCA misses. The PCA is fitted once, on the training
split, before training (``ConvVAE.init_linear_path``), and stays fixed (buffers, not trained).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from smalltrain.tasks.audio.config import temporal_steps_down
from smalltrain.tasks.audio.model.heads import (
    INIT_LEVEL,
    LOGVAR_INIT,
    LOGVAR_MAX,
    LOGVAR_MIN,
    RELATIVE_HEADROOM,
    apply_output,
    check_output,
    preactivation,
)

__all__ = ["LinearPath", "TemporalCode", "TemporalDecoder", "TemporalEncoder", "temporal_plan"]


def temporal_plan(n_frames: int, latent_frames: int) -> tuple[int, int]:
    """Return ``(n_down, padded_frames)``: stride-2 steps from the input to ``latent_frames``.

    The input is padded (with silence) to ``latent_frames * 2**n_down >= n_frames`` frames.
    """
    n_down = temporal_steps_down(n_frames, latent_frames)
    return n_down, latent_frames * 2**n_down


@dataclass(frozen=True)
class TemporalCode:
    """How a chunk's latent vector is laid out (see the module docstring)."""

    frames: int  # latent steps per chunk
    channels: int  # floats per step
    global_dim: int = 0  # floats for the whole chunk
    gain: bool = False  # one float: the chunk's peak level

    @property
    def size(self) -> int:
        """Latent floats per chunk."""
        return self.frames * self.channels + self.global_dim + int(self.gain)

    @property
    def temporal_size(self) -> int:
        return self.frames * self.channels


# the upper bound of a linear-path output (relative to the peak, RELATIVE_HEADROOM) is soft:
# min(y, bound) with a transition about 1 / LINEAR_BOUND_SHARPNESS wide (0.025: 2 dB at -80)
LINEAR_BOUND_SHARPNESS = 40.0
# PCA for the linear path is fitted on at most this many chunks (a seeded subset beyond it)
LINEAR_FIT_MAX_CHUNKS = 2048


class LinearPath(nn.Module):
    """A fixed affine code of whole chunks: whitened PCA of the training split.

    ``encode`` maps chunks ``[B, n_mels, n_frames]`` to ``[B, size]`` coefficients of unit
    variance over the training chunks; ``decode`` maps them back. A fresh one (before ``fit``)
    is all zeros: it codes nothing and decodes to silence (0, or the peak for a gain model).
    """

    mean: Tensor
    to_code: Tensor
    from_code: Tensor

    def __init__(self, n_mels: int, n_frames: int, size: int) -> None:
        super().__init__()
        self.n_mels, self.n_frames, self.size = n_mels, n_frames, size
        dim = n_mels * n_frames
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("to_code", torch.zeros(size, dim))  # rows: component / scale
        self.register_buffer("from_code", torch.zeros(size, dim))  # rows: component * scale

    @torch.no_grad()
    def fit(self, chunks: Tensor, seed: int = 0) -> int:
        """Fit on chunks ``[N, n_mels, n_frames]`` (already relative for a gain model); return
        the components used (at most ``N - 1``; the rest of the code stays unused)."""
        x = chunks.reshape(chunks.shape[0], -1).float().cpu()
        if x.shape[1] != self.mean.shape[0]:
            raise ValueError(f"linear path: expected chunks of {self.n_mels} x {self.n_frames}")
        if x.shape[0] > LINEAR_FIT_MAX_CHUNKS:
            g = torch.Generator().manual_seed(seed)
            x = x[torch.randperm(x.shape[0], generator=g)[:LINEAR_FIT_MAX_CHUNKS]]
        mean = x.mean(dim=0)
        _, s, vh = torch.linalg.svd(x - mean, full_matrices=False)
        scale = s / max(1.0, float(x.shape[0] - 1)) ** 0.5  # std of each coefficient
        k = min(self.size, int((scale > 1e-4 * scale[:1].clamp_min(1e-12)).sum()))
        device = self.mean.device
        self.mean.copy_(mean.to(device))
        self.to_code.zero_()
        self.from_code.zero_()
        self.to_code[:k] = (vh[:k] / scale[:k, None]).to(device)
        self.from_code[:k] = (vh[:k] * scale[:k, None]).to(device)
        return k

    def encode(self, x: Tensor) -> Tensor:
        """Coefficients ``[B, size]`` of chunks ``[B, n_mels, n_frames]``."""
        return (x.flatten(1) - self.mean) @ self.to_code.T

    def decode(self, code: Tensor) -> Tensor:
        """Chunks ``[B, n_mels, n_frames]`` from coefficients ``[B, size]``."""
        out = code @ self.from_code + self.mean
        return out.reshape(code.shape[0], self.n_mels, self.n_frames)


def soft_min(y: Tensor, bound: float) -> Tensor:
    """About ``min(y, bound)``, smooth: equal to ``y`` well below ``bound``, never above it."""
    return bound - F.softplus(bound - y, beta=LINEAR_BOUND_SHARPNESS)


def chunk_gain(x: Tensor) -> Tensor:
    """The peak level ``[B, 1, 1]`` of normalized mels ``[B, n_mels, T]`` (0 = the floor)."""
    return x.amax(dim=(1, 2), keepdim=True).clamp_min(0.0)


class TemporalEncoder(nn.Module):
    """Map ``[B, 1, n_mels, T]`` to ``(mu, logvar)``, each ``[B, code.size]``."""

    def __init__(
        self,
        n_mels: int,
        n_frames: int,
        code: TemporalCode,
        width: int,
        linear: LinearPath | None = None,
    ) -> None:
        super().__init__()
        self.n_mels, self.n_frames, self.code = n_mels, n_frames, code
        self.channels = code.channels
        n_down, self.padded = temporal_plan(n_frames, code.frames)
        layers: list[nn.Module] = [nn.Conv1d(n_mels, width, 3, padding=1), nn.LeakyReLU(0.2)]
        for _ in range(n_down):
            layers += [nn.Conv1d(width, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        stats = nn.Conv1d(width, 2 * code.channels, 3, padding=1)
        kaiming(layers)
        nn.init.kaiming_normal_(stats.weight, nonlinearity="linear")
        with torch.no_grad():  # start with a narrow posterior, see LOGVAR_INIT
            stats.bias.zero_()  # type: ignore[union-attr]
            stats.bias[code.channels :].fill_(LOGVAR_INIT)  # type: ignore[index]
        layers.append(stats)
        self.convs = nn.Sequential(*layers)
        self.to_global: nn.Linear | None = None
        if code.global_dim:
            self.to_global = nn.Linear(2 * width, 2 * code.global_dim)
            nn.init.kaiming_normal_(self.to_global.weight, nonlinearity="linear")
            with torch.no_grad():
                self.to_global.bias.zero_()
                self.to_global.bias[code.global_dim :].fill_(LOGVAR_INIT)
        # with a linear path the code starts as its PCA coefficients: the convs add nothing yet
        self.linear = linear
        if linear is not None:
            with torch.no_grad():
                stats.weight[: code.channels].zero_()
                if self.to_global is not None:
                    self.to_global.weight[: code.global_dim].zero_()

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
        gain = chunk_gain(h) if self.code.gain else None
        if gain is not None:
            h = h - gain
        h = self.convs[:-1](h)
        mu, logvar = self.convs[-1](h).chunk(2, dim=1)
        mus, logvars = [mu.flatten(1)], [logvar.flatten(1)]
        if self.to_global is not None:
            pooled = torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1)
            mu_g, logvar_g = self.to_global(pooled).chunk(2, dim=1)
            mus.append(mu_g)
            logvars.append(logvar_g)
        if self.linear is not None:
            lin = self.linear.encode(F.pad(x.squeeze(1), (0, self.n_frames - x.shape[3]))
                                     - (0.0 if gain is None else gain))  # fmt: skip
            mus = [torch.cat(mus, dim=1) + lin]
            logvars = [torch.cat(logvars, dim=1)]
        if gain is not None:
            mus.append(gain.flatten(1))
            logvars.append(torch.full_like(mus[-1], LOGVAR_MIN))
        return torch.cat(mus, dim=1), torch.cat(logvars, dim=1).clamp(LOGVAR_MIN, LOGVAR_MAX)


class TemporalDecoder(nn.Module):
    """Map ``z`` of ``[B, code.size]`` (or longer sequences, see ``decode_steps``) to mels."""

    def __init__(
        self,
        n_mels: int,
        n_frames: int,
        code: TemporalCode,
        width: int,
        output: str = "sigmoid",
        output_max: float = 2.0,
        tilt: bool = False,
        linear: LinearPath | None = None,
        envelopes: bool = False,
        gain_input: bool = False,
    ) -> None:
        super().__init__()
        check_output(output, output_max)
        self.linear = linear  # the PCA part of the output; the convs add to it (see LinearPath)
        self.n_mels, self.n_frames, self.code = n_mels, n_frames, code
        # the level's dB per mel band per unit of level, beside the level itself (ConvVAE's
        # gain_tilt); absent from models without it
        self.tilt = nn.Parameter(torch.zeros(n_mels, 1)) if tilt and code.gain else None
        self.latent_frames, self.channels = code.frames, code.channels
        self.output, self.output_max = output, output_max
        # a gain model's output is relative to the chunk's peak: at most RELATIVE_HEADROOM above
        # it (for the sigmoid, at least output_max below that)
        bounded = output == "sigmoid"
        self.offset = output_max - RELATIVE_HEADROOM if code.gain and bounded else 0.0
        self.n_down, _ = temporal_plan(n_frames, code.frames)
        # the level as one more input channel: the output is relative to the peak, and without
        # it the decoder has to guess from the code how deep below the peak silence lies
        # (ConvVAE's gain_input; bench/README.md, "Third pass")
        self.gain_input = bool(gain_input and code.gain)
        n_in = code.channels + code.global_dim + int(self.gain_input)
        first = nn.Conv1d(n_in, width, 3, padding=1)
        layers: list[nn.Module] = [first, nn.LeakyReLU(0.2)]
        for _ in range(self.n_down):
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv1d(width, width, 3, padding=1),
                nn.LeakyReLU(0.2),
            ]
        kaiming(layers)
        head = nn.Conv1d(width, n_mels, 3, padding=1, bias=False)
        with torch.no_grad():
            head.weight.mul_(0.0 if linear is not None else 0.1)
        layers.append(head)
        self.convs = nn.Sequential(*layers)
        # the output level per mel band, before the output function; see init_level
        init = INIT_LEVEL - 1.0 if code.gain else INIT_LEVEL  # about 0.6 below the peak
        start = float(preactivation(init + self.offset, output, output_max))
        self.level = nn.Parameter(torch.full((n_mels, 1), start))
        # ConvVAE's envelopes: a spectral shape per chunk (from the global code, or the steps'
        # mean) plus a gain curve per frame (from the last features), added in dB: shape x gain
        # in magnitude. Made last and zero at the start, so a model without them is unchanged.
        self.spectral: nn.Linear | None = None
        self.gain_curve: nn.Conv1d | None = None
        if envelopes:
            self.spectral = nn.Linear(code.global_dim or code.channels, n_mels)
            self.gain_curve = nn.Conv1d(width, 1, 3, padding=1)
            with torch.no_grad():
                for part in (self.spectral, self.gain_curve):
                    for tensor in part.parameters():
                        tensor.zero_()

    def split(self, z: Tensor) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """``z [B, size]`` -> temporal ``[B, channels, frames]``, global ``[B, G]``, gain."""
        code = self.code
        steps = z[:, : code.temporal_size].reshape(z.shape[0], code.channels, code.frames)
        rest = z[:, code.temporal_size :]
        glob = rest[:, : code.global_dim] if code.global_dim else None
        gain = rest[:, code.global_dim :] if code.gain else None
        return steps, glob, gain

    def forward(self, z: Tensor, n_frames: int | None = None) -> Tensor:
        """Decode ``z`` to a mel ``[B, 1, n_mels, n_frames]`` (default: the model's)."""
        steps, glob, gain = self.split(z)
        n_frames = n_frames or self.n_frames
        linear = None
        if self.linear is not None:
            if n_frames > self.n_frames:
                raise ValueError(
                    f"a model with a linear path decodes at most {self.n_frames} frames a chunk"
                )
            linear = self.linear.decode(z[:, : self.linear.size])[:, :, :n_frames]
        return self.decode_steps(steps, glob, gain, n_frames, linear)

    def decode_steps(
        self,
        steps: Tensor,
        glob: Tensor | None,
        gain: Tensor | None,
        n_frames: int,
        linear: Tensor | None = None,
    ) -> Tensor:
        """Decode any number of latent steps ``[B, channels, S]``: ``S * 2**n_down`` frames,
        cropped to ``n_frames``. The convs are local in time, so a sequence longer than one
        chunk decodes to a longer sound (``generate --duration``). A model with a linear path
        needs ``linear``, that path's output ``[B, n_mels, n_frames]`` (``forward`` makes it)."""
        h = steps
        if glob is not None:
            h = torch.cat([h, glob[:, :, None].expand(-1, -1, h.shape[2])], dim=1)
        if self.gain_input and gain is not None:
            h = torch.cat([h, gain.reshape(-1, 1, 1).expand(-1, 1, h.shape[2])], dim=1)
        features = self.convs[:-1](h)
        learned = self.convs[-1](features)
        if self.spectral is not None and self.gain_curve is not None:
            shape = self.spectral(glob if glob is not None else steps.mean(dim=2))
            learned = learned + shape[:, :, None] + self.gain_curve(features)
        learned = learned[:, :, :n_frames]
        if self.linear is not None:
            if linear is None:
                raise ValueError("a model with a linear path decodes whole codes (forward)")
            bound = RELATIVE_HEADROOM if gain is not None else self.output_max
            out = soft_min(linear + learned, bound)
        else:
            out = apply_output(learned + self.level, self.output, self.output_max)
        if gain is not None:
            if self.linear is None:  # this order keeps old models' output bit for bit
                out = out - self.offset
            out = out + gain.reshape(-1, 1, 1)
            if self.tilt is not None:
                out = out + self.tilt * gain.reshape(-1, 1, 1)
        return out.unsqueeze(1)

    @torch.no_grad()
    def init_level(self, mean_mel: Tensor) -> None:
        """Start at ``mean_mel`` ``[n_mels]`` (relative to the chunk's peak for a gain model)."""
        level = preactivation(mean_mel.detach().float().cpu() + self.offset, self.output,
                              self.output_max)  # fmt: skip
        self.level.copy_(level.reshape(-1, 1).to(self.level.device))


def kaiming(layers: list[nn.Module]) -> None:
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
