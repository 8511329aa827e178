"""What the model sees: augmented training chunks beside their originals in ``<run>/seen/``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from smalltrain.engine.seen import listed_files, read_seen
from smalltrain.tasks.audio.data.io import scan_folder
from smalltrain.tasks.audio.data.spectrogram import AudioSpectrogram, SpectrogramConfig
from smalltrain.tasks.audio.training.run import build_datasets
from smalltrain.tasks.audio.training.train import train
from smalltrain.tasks.audio.use.preview import render_mels
from tests.support.audio import make_audio_dataset
from tests.tasks.audio.test_train import Recorder, tiny_config


@pytest.fixture(scope="module")
def sounds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_audio_dataset(tmp_path_factory.mktemp("sounds"))


def test_a_run_writes_augmented_chunks_beside_their_originals(sounds: Path, tmp_path: Path) -> None:
    cfg = tiny_config(epochs=1, noise_snr_db_range=(10.0, 20.0))
    run = tmp_path / "run"
    train(cfg, sounds, run, emit=Recorder())
    manifest = read_seen(run)
    assert manifest is not None
    assert manifest["task"] == "audio"
    assert manifest["augmentation"]["speed_range"] == list(cfg.speed_range)
    items = manifest["items"]
    assert len(items) == 3
    assert {f.name for f in (run / "seen").glob("*.wav")} == listed_files(manifest)
    assert len({i["source"] for i in items}) == 3  # three different files
    # the parameters are the ones the data loader draws for epoch 0's augmented copy
    spectrogram = AudioSpectrogram(SpectrogramConfig(**cfg.spectrogram_kwargs()))
    _, train_ds, _ = build_datasets(cfg, scan_folder(sounds, cfg.sample_rate), spectrogram, None)
    for item in items:
        fi = next(k for k, f in enumerate(train_ds.files) if f.rel == item["source"])
        chunk = next(c for c, (f, _) in enumerate(train_ds.chunk_index) if f == fi)
        mel, draw = train_ds.item_with_draw(train_ds.n_chunks + chunk)
        assert draw is not None
        assert item["params"] == json.loads(json.dumps(draw.to_dict(cfg.sample_rate)))
        assert cfg.speed_range[0] <= item["params"]["speed"] <= cfg.speed_range[1]
        # the augmented WAV is that item's mel through the previews' inversion
        augmented, sr = sf.read(run / "seen" / item["files"]["augmented"], dtype="float32")
        assert item["seconds"] == round(len(augmented) / sr, 3)  # the length the page shows
        original, _ = sf.read(run / "seen" / item["files"]["original"], dtype="float32")
        assert sr == cfg.sample_rate
        expected = render_mels(mel.unsqueeze(0), spectrogram)[0].numpy()
        expected *= min(1.0, 0.999 / float(np.abs(expected).max()))  # write_wav's peak guard
        assert np.abs(augmented - expected).max() < 2e-3
        assert augmented.shape == original.shape
        assert np.abs(augmented - original).mean() > 1e-3  # augmentation changed it


def test_without_augmentation_the_json_says_so(sounds: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(tiny_config(epochs=1, augmentation=False), sounds, run, emit=Recorder())
    manifest = read_seen(run)
    assert manifest is not None
    assert manifest["items"] == []
    assert "off" in manifest["note"]
