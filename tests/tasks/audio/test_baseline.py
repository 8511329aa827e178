"""The PCA baseline against a numpy SVD."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from smalltrain.tasks.audio.quality.baseline import PCABaseline


def _data(n: int = 20, d: int = 30, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)) @ rng.normal(size=(4, d)) + 0.1 * rng.normal(size=(n, d))


def _numpy_reconstruction(train: np.ndarray, test: np.ndarray, k: int) -> np.ndarray:
    mean = train.mean(axis=0)
    _, _, vt = np.linalg.svd(train - mean, full_matrices=False)
    v = vt[:k]
    return (test - mean) @ v.T @ v + mean


@pytest.mark.parametrize("k", [1, 3, 8])
def test_matches_numpy_svd(k: int) -> None:
    train, test = _data(), _data(5, seed=1)
    pca = PCABaseline.fit(torch.from_numpy(train), k)
    ours = pca.reconstruct(torch.from_numpy(test)).numpy()
    np.testing.assert_allclose(ours, _numpy_reconstruction(train, test, k), atol=1e-5)
    assert pca.k == k


def test_float32_and_shaped_input() -> None:
    train = torch.from_numpy(_data()).float().reshape(20, 5, 6)
    pca = PCABaseline.fit(train, 4)
    out = pca.reconstruct(train[:3])
    assert out.shape == (3, 5, 6)
    assert out.dtype == torch.float32
    coefs = pca.encode(train[:3])
    assert coefs.shape == (3, 4)
    assert torch.allclose(pca.decode(coefs).reshape(3, 5, 6), out, atol=1e-5)


def test_k_is_capped_by_rows_and_features() -> None:
    assert PCABaseline.fit(torch.randn(5, 30), 64).k == 4
    assert PCABaseline.fit(torch.randn(50, 3), 64).k == 3
    one = PCABaseline.fit(torch.randn(1, 3), 4)
    assert one.k == 0
    assert torch.allclose(one.reconstruct(torch.zeros(2, 3)), one.mean.float().expand(2, 3))


def test_full_rank_reconstruction_is_exact_on_train() -> None:
    train = torch.from_numpy(_data(10, 30))
    pca = PCABaseline.fit(train, 9)
    assert torch.allclose(pca.reconstruct(train), train, atol=1e-8)


def test_sample_matches_coefficient_statistics() -> None:
    train = torch.from_numpy(_data(200, 12))
    pca = PCABaseline.fit(train, 3)
    draws = pca.sample(4000, torch.Generator().manual_seed(0)).double()
    coefs = pca.encode(draws)
    assert torch.allclose(coefs.mean(0), pca.coef_mean, atol=0.15)
    assert torch.allclose(torch.cov(coefs.T), pca.coef_cov, rtol=0.1, atol=0.1)
    again = pca.sample(4, torch.Generator().manual_seed(0))
    assert torch.equal(again, pca.sample(4, torch.Generator().manual_seed(0)))


def test_state_dict_roundtrip() -> None:
    train = torch.from_numpy(_data())
    pca = PCABaseline.fit(train, 3)
    again = PCABaseline.from_state_dict(pca.state_dict())
    assert torch.equal(again.reconstruct(train), pca.reconstruct(train))
    assert again.n_train == 20


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="at least one"):
        PCABaseline.fit(torch.zeros(0, 3), 1)
    pca = PCABaseline.fit(torch.randn(5, 3), 1)
    with pytest.raises(ValueError, match="3 features"):
        pca.reconstruct(torch.zeros(2, 4))


def test_comparator_pca_is_bounded_by_the_training_range() -> None:
    """A held-out chunk PCA extrapolates 10 dB above anything it was fitted on: unbounded, that
    one bin scores SC 2.2 on linear magnitude (212 in the UI's 4-file job), a worse score than
    silence (1.0). Clipped to the training chunks' loudest bin (the model's output is bounded
    too) the same PCA scores what it is: nearly exact."""
    from smalltrain.tasks.audio.data.spectrogram import AudioSpectrogram, SpectrogramConfig
    from smalltrain.tasks.audio.use.evaluate import PCAComparator

    spectrogram = AudioSpectrogram(SpectrogramConfig(floor_db=-80.0))
    # two mel bins x one frame; the training chunks lie on the line a + b = -60 dB
    train_db = torch.tensor([[0.0, -60.0], [-60.0, 0.0], [-30.0, -30.0]]).reshape(3, 2, 1)
    held_out_db = torch.tensor([[0.0, -80.0]]).reshape(1, 2, 1)  # projects onto (+10, -70) dB
    comparator = PCAComparator(spectrogram, spectrogram.normalize(train_db), latent_floats=1)
    assert comparator.k == 1
    assert comparator.pca_scores(spectrogram.normalize(held_out_db)).sc < 0.01
    assert comparator.pca_reconstruct_db(held_out_db).max() <= 0.0
