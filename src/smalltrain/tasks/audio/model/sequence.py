"""Sounds of any length: a prior over sequences of chunk codes, decoded and overlap-added.

The model codes one chunk (1 s) at a time. A longer sound is a sequence of chunks that start
every ``hop_frames`` mel frames (half a chunk), each overlapping the next by half. The prior
over such sequences (``SequencePrior``) is fitted to the training files themselves, cut the
same way and encoded:

- the first chunk comes from ``start``: for one-shot material (onset or mixed) a Gaussian fitted
  to the codes of the files' *first* chunks, so a new sound starts with an attack as the
  training sounds do; for continuous material (or with fewer than ``MIN_START_FILES`` files)
  the Gaussian of all chunks;
- each next chunk from a linear-Gaussian transition ``z' = b + A z + noise`` fitted to the
  pairs of consecutive chunks of every file. Every file is followed by one chunk of silence, so
  the transitions also learn that a hit decays and ends: a one-shot asked for 3 s rings out and
  falls silent as the training hits do, rather than looping its attack.

With a few hundred pairs for a 60-float code, the joint covariance of ``(z, z')`` is shrunk
towards its diagonal by ``2d / (2d + pairs)`` before conditioning, and ``A`` is scaled down if
its spectral radius exceeds ``MAX_RADIUS`` (a stable process cannot drift off).

``render_sequence`` decodes the chunks, cross-fades their mel *power* over each overlap and
renders the whole mel at once, so there is one phase-coherent Griffin-Lim pass and no seam.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from smalltrain.tasks.audio.data.spectrogram import AudioSpectrogram
from smalltrain.tasks.audio.model.model import ConvVAE
from smalltrain.tasks.audio.model.prior import LatentPrior

__all__ = ["SequencePrior", "fit_sequence_prior", "render_sequence", "sequence_chunks"]

MIN_START_FILES = 8  # fewer files than this: start from the prior of all chunks
MAX_RADIUS = 0.95
FADE_OUT_S = 0.05  # the last 50 ms of a generated sound fade to silence (no click at the end)
_BATCH = 64


class SequencePrior:
    """Where a sequence of chunk codes starts, and how each chunk follows the last."""

    def __init__(
        self,
        start: LatentPrior,
        transition: Tensor,
        offset: Tensor,
        noise_root: Tensor,
        hop_frames: int,
        n_pairs: int = 0,
        start_from: str = "all chunks",
    ) -> None:
        d = start.dim
        if transition.shape != (d, d) or offset.shape != (d,) or noise_root.shape != (d, d):
            raise ValueError(f"a sequence prior over {d} floats needs [d, d], [d] and [d, d]")
        self.start = start
        self.transition = transition.detach().float().cpu()
        self.offset = offset.detach().float().cpu()
        self.noise_root = noise_root.detach().float().cpu()
        self.hop_frames = int(hop_frames)
        self.n_pairs = int(n_pairs)
        self.start_from = start_from

    @property
    def dim(self) -> int:
        return self.start.dim

    def sample(
        self, n: int, n_chunks: int, generator: torch.Generator | None = None,
        temperature: float = 1.0,
    ) -> Tensor:  # fmt: skip
        """``n`` sequences of ``n_chunks`` codes: ``[n, n_chunks, d]`` (CPU, float32)."""
        z = [self.start.sample(n, generator, temperature)]
        for _ in range(n_chunks - 1):
            eps = torch.randn(n, self.dim, generator=generator)
            z.append(
                self.offset + z[-1] @ self.transition.T + temperature * eps @ self.noise_root.T
            )
        return torch.stack(z, dim=1)

    def state_dict(self) -> dict[str, Any]:
        """Plain tensors, ints and strings, loadable with ``torch.load(weights_only=True)``."""
        return {
            "start": self.start.state_dict(),
            "transition": self.transition,
            "offset": self.offset,
            "noise_root": self.noise_root,
            "hop_frames": self.hop_frames,
            "n_pairs": self.n_pairs,
            "start_from": self.start_from,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> SequencePrior:
        return cls(
            LatentPrior.from_state_dict(state["start"]),
            state["transition"],
            state["offset"],
            state["noise_root"],
            int(state["hop_frames"]),
            int(state.get("n_pairs", 0)),
            str(state.get("start_from", "all chunks")),
        )

    @classmethod
    def independent(cls, prior: LatentPrior, hop_frames: int) -> SequencePrior:
        """Every chunk drawn from ``prior`` on its own (a model stored without a sequence
        prior): sounds keep the material's texture but do not evolve or end as it does."""
        d = prior.dim
        zeros = torch.zeros(d, d)
        return cls(prior, zeros, prior.mean, prior.root, hop_frames, 0, "independent chunks")

    @classmethod
    def of_checkpoint(cls, ckpt: dict[str, Any], dim: int) -> SequencePrior | None:
        """The sequence prior stored with a model, or None (older models, checkpoints)."""
        state = ckpt.get("sequence_prior")
        if not isinstance(state, dict):
            return None
        prior = cls.from_state_dict(state)
        return prior if prior.dim == dim else None


def sequence_chunks(wave: Tensor, chunk_samples: int, hop_samples: int) -> Tensor:
    """``[C, chunk_samples]``: chunks every ``hop_samples`` covering ``wave``, then one more
    that starts after its end (silence: how a sound ends)."""
    n = int(wave.shape[0])
    starts = list(range(0, max(n, 1), hop_samples))
    starts.append(starts[-1] + hop_samples)
    pad = torch.nn.functional.pad
    pieces = [wave[s : s + chunk_samples] for s in starts]
    return torch.stack([pad(p, (0, chunk_samples - p.shape[0])) for p in pieces])


@torch.no_grad()
def _codes(model: ConvVAE, mels: Tensor) -> Tensor:
    device = next(model.parameters()).device
    out = [
        model.encode(b.unsqueeze(1).to(device, torch.float32))[0].cpu() for b in mels.split(_BATCH)
    ]
    return torch.cat(out)


def _shrunk_conditional(first: Tensor, second: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(A, b, noise_root)`` of ``second | first`` under a shrunk joint Gaussian."""
    x = torch.cat([first, second], dim=1).double()
    n, d2 = x.shape
    d = d2 // 2
    cov = torch.cov(x.T, correction=1) if n > 1 else torch.zeros(d2, d2, dtype=torch.float64)
    alpha = d2 / (d2 + n)
    cov = (1 - alpha) * cov + alpha * torch.diag(torch.diag(cov))
    mean = x.mean(dim=0)
    s11, s12 = cov[:d, :d], cov[:d, d:]
    ridge = 1e-6 * (torch.diag(s11).mean() + 1e-12) * torch.eye(d, dtype=torch.float64)
    a = torch.linalg.solve(s11 + ridge, s12).T  # S21 S11^-1
    radius = float(torch.linalg.eigvals(a).abs().max()) if d else 0.0
    if radius > MAX_RADIUS:
        a = a * (MAX_RADIUS / radius)
    b = mean[d:] - a @ mean[:d]
    resid = second.double() - first.double() @ a.T - b
    noise = torch.cov(resid.T, correction=1).reshape(d, d) if n > 1 else torch.zeros(d, d)
    evals, evecs = torch.linalg.eigh((noise + noise.T) / 2)
    return a, b, evecs * evals.clamp_min(0.0).sqrt()


def fit_sequence_prior(
    model: ConvVAE,
    spectrogram: AudioSpectrogram,
    waves: Sequence[Tensor],
    chunk_samples: int,
    from_onsets: bool,
) -> SequencePrior:
    """Fit the prior to training ``waves`` (mono, at the model's rate); see the module doc.

    Args:
        from_onsets: start from the files' first chunks (one-shot material).
    """
    hop_frames = max(1, int(model.decoder.n_frames) // 2)
    hop_samples = hop_frames * spectrogram.config.hop_length
    codes = []
    for wave in waves:
        chunks = sequence_chunks(wave.float().cpu(), chunk_samples, hop_samples)
        codes.append(_codes(model, spectrogram.normalize(spectrogram.log_mel(chunks)).cpu()))
    every = torch.cat(codes)
    firsts = torch.stack([c[0] for c in codes])
    use_firsts = from_onsets and len(codes) >= MIN_START_FILES
    start = LatentPrior.fit(firsts if use_firsts else every)
    first = torch.cat([c[:-1] for c in codes])
    second = torch.cat([c[1:] for c in codes])
    a, b, root = _shrunk_conditional(first, second)
    return SequencePrior(start, a, b, root, hop_frames, int(first.shape[0]),
                         "the files' first chunks" if use_firsts else "all chunks")  # fmt: skip


def overlap_add_power(mels_db: Tensor, hop_frames: int, n_frames: int) -> Tensor:
    """Join chunk mels ``[B, C, n_mels, T]`` (dB) that start every ``hop_frames`` frames into
    ``[B, n_mels, n_frames]`` dB, cross-fading their power linearly over each overlap."""
    b, c, n_mels, t = mels_db.shape
    total = max(n_frames, (c - 1) * hop_frames + t)
    power = torch.zeros(b, n_mels, total, dtype=torch.float64)
    weight = torch.zeros(total, dtype=torch.float64)
    fade = max(1, t - hop_frames)
    ramp = torch.arange(t, dtype=torch.float64)
    for k in range(c):
        w = torch.ones(t, dtype=torch.float64)
        if k > 0:
            w = torch.minimum(w, (ramp + 1) / (fade + 1))
        if k < c - 1:
            w = torch.minimum(w, (t - ramp) / (fade + 1))
        at = k * hop_frames
        power[:, :, at : at + t] += w * torch.pow(10.0, mels_db[:, k].double() / 10.0)
        weight[at : at + t] += w
    joined = power / weight.clamp_min(1e-12)
    return (10 * torch.log10(joined.clamp_min(1e-30)))[:, :, :n_frames].float()


@torch.no_grad()
def render_sequence(
    model: ConvVAE, spectrogram: AudioSpectrogram, z: Tensor, hop_frames: int, samples: int
) -> Tensor:
    """Decode code sequences ``[B, C, d]`` into waveforms ``[B, samples]``."""
    b, c, d = z.shape
    device = next(model.parameters()).device
    model.eval()
    mels = torch.cat(
        [model.decode(part.to(device)).cpu() for part in z.reshape(b * c, d).split(_BATCH)]
    )
    db = spectrogram.denormalize(mels[:, 0].clamp_min(0.0)).reshape(b, c, *mels.shape[-2:])
    cfg = spectrogram.config
    joined = overlap_add_power(db, hop_frames, cfg.frames(samples)).clamp_min(cfg.floor_db)
    audio = spectrogram.to(torch.device("cpu")).to_audio(joined, length=samples)
    fade = min(samples, round(FADE_OUT_S * cfg.sample_rate))
    if fade > 1:
        audio[:, -fade:] *= torch.cos(torch.linspace(0, math.pi / 2, fade)) ** 2
    return audio


def chunks_for(samples: int, n_frames: int, hop_frames: int, hop_length: int) -> int:
    """Chunks that cover ``samples`` when they start every ``hop_frames`` frames."""
    frames = samples // hop_length + 1
    return 1 + max(0, math.ceil((frames - n_frames) / hop_frames))
