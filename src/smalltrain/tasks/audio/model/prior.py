"""The latent distribution new sounds are drawn from: a Gaussian fitted to the training codes.

A VAE's nominal prior is N(0, I), but with the small KL weight that reconstructs best on small
data (β ~1e-4) the training codes do not fill it: on the shared sonic_pi set their means sat
about 0.5 away from 0 with a spread of 0.65, and decoding N(0, I) draws gave sounds whose log-mel
statistics were 9x further from held-out material (Fréchet distance of 16 sounds 111,302 dB²
against 12,160 for draws from the fitted Gaussian; PCA's own Gaussian sampler: 11,381;
bench/README.md, "Audio quality"). So, as for PCA, new
sounds are drawn from a full-covariance Gaussian fitted to the posterior means of the training
chunks ("ex-post density estimation", Ghosh et al. 2020). Training stores it with every exported
model; a model without one (an interval checkpoint) falls back to N(0, I).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from smalltrain.tasks.audio.model.model import ConvVAE

__all__ = ["LatentPrior", "fit_latent_prior"]

_BATCH = 64


class LatentPrior:
    """A Gaussian over the latent vector: ``z = mean + root @ eps`` with ``eps ~ N(0, I)``.

    ``root @ root.T`` is the covariance. ``LatentPrior.standard(d)`` is N(0, I).
    """

    def __init__(self, mean: Tensor, root: Tensor, n_codes: int = 0) -> None:
        if mean.dim() != 1 or root.shape != (mean.shape[0], mean.shape[0]):
            raise ValueError(
                f"a latent prior needs mean [d] and root [d, d], got {list(mean.shape)} and "
                f"{list(root.shape)}"
            )
        self.mean = mean.detach().float().cpu()
        self.root = root.detach().float().cpu()
        self.n_codes = n_codes

    @property
    def dim(self) -> int:
        """Latent floats per chunk."""
        return int(self.mean.shape[0])

    @property
    def fitted(self) -> bool:
        """True when fitted to codes, False for the plain N(0, I)."""
        return self.n_codes > 0

    @classmethod
    def standard(cls, dim: int) -> LatentPrior:
        """The VAE's nominal prior N(0, I)."""
        return cls(torch.zeros(dim), torch.eye(dim))

    @classmethod
    def fit(cls, codes: Tensor) -> LatentPrior:
        """Fit mean and full covariance to ``codes`` ``[N, d]``.

        The covariance is factored by a symmetric eigendecomposition (negative round-off
        eigenvalues clamped to 0), so fewer codes than dimensions still give a valid sampler.

        Raises:
            ValueError: fewer than 2 codes.
        """
        if codes.dim() != 2 or codes.shape[0] < 2:
            raise ValueError(f"fitting a latent prior needs [N >= 2, d] codes, got {codes.shape}")
        x = codes.detach().double().cpu()
        evals, evecs = torch.linalg.eigh(torch.cov(x.T, correction=1).reshape(x.shape[1], -1))
        return cls(x.mean(dim=0), evecs * evals.clamp_min(0.0).sqrt(), n_codes=int(x.shape[0]))

    def sample(
        self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0
    ) -> Tensor:
        """``n`` latents ``[n, d]`` (CPU, float32); ``temperature`` scales the spread."""
        eps = torch.randn(n, self.dim, generator=generator)
        return self.mean + temperature * eps @ self.root.T

    def state_dict(self) -> dict[str, Any]:
        """Plain tensors and ints, loadable with ``torch.load(weights_only=True)``."""
        return {"mean": self.mean, "root": self.root, "n_codes": self.n_codes}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> LatentPrior:
        """Rebuild a prior saved with ``state_dict``."""
        return cls(state["mean"], state["root"], int(state.get("n_codes", 0)))

    @classmethod
    def of_checkpoint(cls, ckpt: dict[str, Any], dim: int) -> LatentPrior:
        """The prior stored with a model, or N(0, I) when it has none (or a mismatched one)."""
        state = ckpt.get("latent_prior")
        if isinstance(state, dict):
            prior = cls.from_state_dict(state)
            if prior.dim == dim:
                return prior
        return cls.standard(dim)


@torch.no_grad()
def fit_latent_prior(model: ConvVAE, mels: Tensor) -> LatentPrior:
    """Fit the prior to the posterior means of normalized mels ``[N, n_mels, T]``.

    Runs in eval mode on the model's device and restores the model's mode. With fewer than two
    chunks it returns N(0, I).
    """
    if mels.shape[0] < 2:
        return LatentPrior.standard(model.latent_dim)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        codes = [
            model.encode(b.reshape(b.shape[0], 1, *b.shape[-2:]).to(device, torch.float32))[0]
            for b in mels.split(_BATCH)
        ]
    finally:
        model.train(was_training)
    return LatentPrior.fit(torch.cat(codes).cpu())
