"""evaluate(): the model beside PCA on a folder, with the tiny model the suite trains once
(``trained_audio`` in ``tests/conftest.py``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from smalltrain.errors import DatasetError
from smalltrain.tasks.audio.use.evaluate import PCAComparator, compare_with_pca, evaluate
from smalltrain.tasks.audio.use.generate import load_model
from tests.support.audio import TONE_SR, TrainedAudio, write_tones

SR = TONE_SR


@pytest.fixture
def trained_run(trained_audio: TrainedAudio) -> Path:
    """The session's shared run (``tests/conftest.py``): a tiny VAE trained for 2 epochs on 6
    synthetic tones, 8 latent floats, 32 mels, 16 kHz."""
    return trained_audio.run


@pytest.fixture(scope="session")
def held_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tones(tmp_path_factory.mktemp("held") / "held", 3, seed=1)


def test_evaluate_reports_model_and_pca(trained_run: Path, held_out: Path) -> None:
    result = evaluate(trained_run, held_out, waveform=False)
    data = result.to_json_dict()
    json.dumps(data, allow_nan=False)
    assert data["model"]["latent_floats"] == 8
    n_train = data["baseline_pca"]["train_chunks"]
    assert data["baseline_pca"]["k"] == min(8, n_train - 1)
    assert n_train >= 4  # 4 training files of 0.4-2.2 s at 1 s chunks
    assert data["chunks"] == sum(f["chunks"] for f in data["files"])
    assert {f["path"] for f in data["files"]} == {"tone0.wav", "tone1.wav", "tone2.wav"}
    for key in ("model", "baseline_pca"):
        assert 0.0 < data[key]["sc"] < 10.0
        assert 0.0 < data[key]["mel_l1_db"] < 80.0
    mean_of_chunks = sum(f["sc"] * f["chunks"] for f in data["files"]) / data["chunks"]
    assert math.isclose(data["model"]["sc"], mean_of_chunks, rel_tol=1e-9)
    assert data["skipped"] == []
    assert "generation" not in data
    assert not result.warnings
    assert data["model_file"].endswith("best.pt")
    assert result.headline().startswith(f"model SC {data['model']['sc']:.3f}, PCA-")


def test_evaluate_scores_the_rendered_audio_and_the_inversion_ceiling(
    trained_run: Path, held_out: Path
) -> None:
    data = evaluate(trained_run, held_out).to_json_dict()
    wave = data["waveform"]
    assert wave["files"] == 3
    assert wave["resolutions"] == [[512, 128], [1024, 256], [2048, 512]]
    for side in ("model", "baseline_pca", "inversion"):
        assert 0.0 < wave[side]["sc"] < 5.0
        assert 0.0 < wave[side]["log_mag_db"] < 80.0
    # the inversion alone is the ceiling: a 2-epoch model renders far worse than it
    assert wave["inversion"]["sc"] < wave["model"]["sc"]
    per_file = [f["wave"] for f in data["files"]]
    mean = sum(f["inversion"]["sc"] for f in per_file) / len(per_file)
    assert math.isclose(wave["inversion"]["sc"], mean, rel_tol=1e-9)
    assert "waveform" not in evaluate(trained_run, held_out, waveform=False).to_json_dict()


def test_reconstruct_writes_what_evaluate_scores(
    trained_run: Path, held_out: Path, tmp_path: Path
) -> None:
    from smalltrain.tasks.audio.data.io import load_audio
    from smalltrain.tasks.audio.quality.waveform import mrstft_distance
    from smalltrain.tasks.audio.use.generate import reconstruct

    data = evaluate(trained_run, held_out).to_json_dict()
    row = next(f for f in data["files"] if f["path"] == "tone0.wav")
    out = reconstruct(load_model(trained_run), held_out / "tone0.wav", tmp_path / "r.wav")
    written, original = load_audio(out, SR), load_audio(held_out / "tone0.wav", SR)
    assert written.shape == original.shape
    scores = mrstft_distance(torch.from_numpy(written), torch.from_numpy(original))
    # the WAV is 16-bit: scores agree to the quantisation
    assert scores.sc == pytest.approx(row["wave"]["model"]["sc"], abs=2e-3)


def test_evaluate_generation_scores(trained_run: Path, held_out: Path) -> None:
    gen = evaluate(trained_run, held_out, generate=4, seed=3, waveform=False).to_json_dict()[
        "generation"
    ]
    assert gen["n"] == 4
    assert gen["frechet_model"] > 0.0
    assert gen["frechet_pca"] > 0.0
    assert gen["model_prior"] == "stored"  # the exported model carries its fitted prior
    for side in ("model", "baseline_pca"):
        scores = gen[side]
        assert 0.0 <= scores["precision"] <= 1.0
        assert 0.0 <= scores["recall"] <= 1.0
        assert scores["memorisation_ratio"] > 0.0
        assert 0.0 <= scores["near_copies"] <= 1.0
    assert gen["train_chunks"] >= 4
    again = evaluate(trained_run, held_out, generate=4, seed=3, waveform=False).to_json_dict()[
        "generation"
    ]
    assert again == gen


def test_exported_model_stores_the_prior_fitted_to_its_training_codes(
    trained_audio: TrainedAudio,
) -> None:
    trained_run = trained_audio.run
    loaded = load_model(trained_run)
    prior = loaded.prior
    assert prior.fitted
    assert prior.dim == loaded.model.latent_dim == 8
    train_chunks = evaluate(trained_run, trained_audio.data, waveform=False)
    assert prior.n_codes == train_chunks.pca_train_chunks  # the same split PCA is fitted on


def test_checkpoint_without_prior_gets_one_fitted_on_the_training_split(
    trained_run: Path, held_out: Path
) -> None:
    ckpt = sorted((trained_run / "checkpoints").glob("*.pt"))[-1]
    assert "latent_prior" not in torch.load(ckpt, weights_only=True)
    gen = evaluate(ckpt, held_out, generate=4, seed=3, waveform=False).to_json_dict()["generation"]
    assert gen["model_prior"] == "fitted"
    assert math.isfinite(gen["frechet_model"])


def test_evaluate_on_training_folder_warns(trained_audio: TrainedAudio) -> None:
    result = evaluate(trained_audio.run, trained_audio.data, waveform=False)
    assert any("training split" in w for w in result.warnings)


def test_only_bad_files_is_a_clear_error(trained_run: Path, tmp_path: Path) -> None:
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really")
    (tmp_path / "empty.flac").write_bytes(b"")
    with pytest.raises(DatasetError, match="no usable audio"):
        evaluate(trained_run, tmp_path)


def test_bad_files_are_skipped_and_named(trained_run: Path, held_out: Path, tmp_path: Path) -> None:
    folder = write_tones(tmp_path / "mixed", 2, seed=4)
    (folder / "broken.wav").write_bytes(b"RIFF not really")
    data = evaluate(trained_run, folder, waveform=False).to_json_dict()
    assert [s["path"] for s in data["skipped"]] == ["broken.wav"]
    assert data["skipped"][0]["reason"]
    assert len(data["files"]) == 2


def _with_train_files(run: Path, out: Path, mutate: object) -> Path:
    ckpt = torch.load(run / "export" / "best.pt", weights_only=True)
    ckpt["train_files"] = mutate(ckpt["train_files"])  # type: ignore[operator]
    torch.save(ckpt, out)
    return out


def test_missing_training_file_warns(trained_run: Path, held_out: Path, tmp_path: Path) -> None:
    def drop_first(files: list[dict[str, str]]) -> list[dict[str, str]]:
        return [{**files[0], "path": str(tmp_path / "gone.wav")}, *files[1:]]

    model = _with_train_files(trained_run, tmp_path / "model.pt", drop_first)
    result = evaluate(model, held_out, waveform=False)
    assert any("missing" in w for w in result.warnings)
    assert result.pca_train_chunks >= 2


def test_no_training_file_left_is_an_error(
    trained_run: Path, held_out: Path, tmp_path: Path
) -> None:
    def all_gone(files: list[dict[str, str]]) -> list[dict[str, str]]:
        return [{**f, "path": str(tmp_path / f"gone{i}.wav")} for i, f in enumerate(files)]

    model = _with_train_files(trained_run, tmp_path / "model.pt", all_gone)
    with pytest.raises(DatasetError, match="PCA baseline cannot be fitted"):
        evaluate(model, held_out)


def test_comparator_keys_and_exact_pca_on_train(trained_run: Path) -> None:
    loaded = load_model(trained_run)
    g = torch.Generator().manual_seed(0)
    train_mels = torch.rand(5, 32, 63, generator=g)
    comparator = PCAComparator(loaded.spectrogram, train_mels, latent_floats=64)
    assert comparator.k == 4  # capped at N - 1
    out = comparator.compare(loaded.model, train_mels)
    keys = {"val/sc", "val/mel_l1_db", "pca/sc", "pca/mel_l1_db", "pca/k", "pca/train_sc"}
    assert set(out) == keys
    assert out["pca/sc"] < 1e-4  # N - 1 components span a centred set of N rows
    assert out["pca/train_sc"] == comparator.train_sc < 1e-4  # the same chunks here
    assert out["val/sc"] > 0.01
    assert comparator.pca_scores(train_mels) is comparator.pca_scores(train_mels)  # cached
    once = compare_with_pca(loaded.model, loaded.spectrogram, train_mels, train_mels)
    assert once["pca/k"] == 4.0
    assert math.isclose(once["val/sc"], out["val/sc"], rel_tol=1e-6)


def test_compare_from_reconstructions_matches_running_the_model(trained_run: Path) -> None:
    loaded = load_model(trained_run)
    g = torch.Generator().manual_seed(1)
    mels = torch.rand(6, 32, 63, generator=g)
    comparator = PCAComparator(loaded.spectrogram, mels, latent_floats=64)
    with torch.no_grad():
        mu, _ = loaded.model.encode(mels.unsqueeze(1))
        recon = loaded.model.decode(mu, mels.shape[-1])
    from_recon = comparator.compare_reconstructions(recon, mels)
    assert from_recon == pytest.approx(comparator.compare(loaded.model, mels), rel=1e-6)
