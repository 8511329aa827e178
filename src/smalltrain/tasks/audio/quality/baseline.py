"""A linear baseline inside the product: PCA on flattened log-mel chunks.

``PCABaseline.fit`` centres the training chunks and keeps the top ``k`` right singular vectors
of ``torch.linalg.svd``. Reconstruction is ``mean + (x - mean) V_k^T V_k``. Its own generator,
``sample``, draws PCA coefficients from a Gaussian fitted to the training coefficients (full
covariance) and decodes them.

Centred PCA is invariant to one affine rescaling of every feature, so fitting on dB or on the
model's normalized [0, 1] scale gives the same reconstructions (in the matching scale).
Work is done in float64; results come back in the input's dtype.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["PCABaseline"]


class PCABaseline:
    """PCA with ``k`` components fitted on ``[N, D]`` rows (flattened chunks).

    Build it with ``PCABaseline.fit``. Attributes: ``k``, ``mean`` ``[D]``, ``components``
    ``[k, D]`` (orthonormal rows), ``coef_mean`` ``[k]`` and ``coef_cov`` ``[k, k]``.
    """

    def __init__(
        self,
        mean: Tensor,
        components: Tensor,
        coef_mean: Tensor | None = None,
        coef_cov: Tensor | None = None,
        n_train: int = 0,
    ) -> None:
        self.mean = mean.to(torch.float64)
        self.components = components.to(torch.float64)
        k = self.components.shape[0]
        self.coef_mean = (
            torch.zeros(k, dtype=torch.float64) if coef_mean is None else coef_mean.double()
        )
        self.coef_cov = torch.eye(k, dtype=torch.float64) if coef_cov is None else coef_cov.double()
        self.n_train = n_train

    @property
    def k(self) -> int:
        """Number of components kept."""
        return int(self.components.shape[0])

    @property
    def dim(self) -> int:
        """Features per row ``D``."""
        return int(self.mean.shape[0])

    @staticmethod
    def max_components(n_rows: int, dim: int) -> int:
        """The most components a centred fit on ``n_rows`` rows of ``dim`` features can use."""
        return max(0, min(n_rows - 1, dim))

    @classmethod
    def fit(cls, train_chunks: Tensor, k: int) -> PCABaseline:
        """Fit PCA on ``train_chunks`` ``[N, D]`` (or ``[N, ...]``, flattened) keeping ``k`` parts.

        ``k`` is capped at ``N - 1`` (a centred set of N rows spans at most N - 1 directions)
        and at ``D``.

        Raises:
            ValueError: no rows, or a negative ``k``.
        """
        if train_chunks.shape[0] == 0:
            raise ValueError("PCA needs at least one training chunk")
        if k < 0:
            raise ValueError(f"PCA k={k}: must be >= 0")
        x = train_chunks.reshape(train_chunks.shape[0], -1).to(torch.float64)
        n, d = x.shape
        k = min(k, cls.max_components(n, d))
        mean = x.mean(dim=0)
        centred = x - mean
        _, s, vh = torch.linalg.svd(centred, full_matrices=False)
        components = vh[:k]
        coefs = centred @ components.T  # [N, k]
        coef_mean = coefs.mean(dim=0)
        if n > 1:
            coef_cov = torch.cov(coefs.T, correction=1).reshape(k, k)
        else:
            coef_cov = torch.zeros(k, k, dtype=torch.float64)
        return cls(mean, components, coef_mean, coef_cov, n_train=n)

    def _rows(self, x: Tensor) -> Tensor:
        rows = x.reshape(x.shape[0], -1).to(torch.float64)
        if rows.shape[1] != self.dim:
            raise ValueError(f"expected rows of {self.dim} features, got {rows.shape[1]}")
        return rows

    def encode(self, x: Tensor) -> Tensor:
        """PCA coefficients ``[B, k]`` of rows ``x`` ``[B, D]`` (or ``[B, ...]``)."""
        return ((self._rows(x) - self.mean) @ self.components.T).to(x.dtype)

    def decode(self, coefs: Tensor) -> Tensor:
        """Rows ``[B, D]`` from coefficients ``[B, k]``."""
        out = coefs.to(torch.float64) @ self.components + self.mean
        return out.to(coefs.dtype)

    def reconstruct(self, x: Tensor) -> Tensor:
        """Project ``x`` onto the components and back; the result has ``x``'s shape and dtype."""
        rows = self._rows(x)
        coefs = (rows - self.mean) @ self.components.T
        out = coefs @ self.components + self.mean
        return out.reshape(x.shape).to(x.dtype)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` rows ``[n, D]`` (float32) from the Gaussian fitted to the coefficients.

        The coefficient covariance is factored by a symmetric eigendecomposition (negative
        round-off eigenvalues clamped to 0), so a rank-deficient covariance still samples.
        """
        eps = torch.randn(n, self.k, generator=generator, dtype=torch.float64)
        evals, evecs = torch.linalg.eigh(self.coef_cov)
        root = evecs * evals.clamp_min(0.0).sqrt()  # root @ root.T == coef_cov
        coefs = self.coef_mean + eps @ root.T
        return self.decode(coefs).to(torch.float32)

    def state_dict(self) -> dict[str, Any]:
        """Plain tensors and ints, loadable with ``torch.load(weights_only=True)``."""
        return {
            "mean": self.mean,
            "components": self.components,
            "coef_mean": self.coef_mean,
            "coef_cov": self.coef_cov,
            "n_train": self.n_train,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> PCABaseline:
        """Rebuild a baseline saved with ``state_dict``."""
        return cls(
            state["mean"],
            state["components"],
            state["coef_mean"],
            state["coef_cov"],
            int(state.get("n_train", 0)),
        )

    def __repr__(self) -> str:
        return f"PCABaseline(k={self.k}, dim={self.dim}, n_train={self.n_train})"
