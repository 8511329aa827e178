"""Descriptors measure what they name, on sounds made to differ in one thing."""

from __future__ import annotations

import numpy as np
import pytest

from smalltrain.tasks.audio.data.spectrogram import AudioSpectrogram, SpectrogramConfig
from smalltrain.tasks.audio.use.descriptors import DESCRIPTORS, band_centres, describe

SR = 16000
CONFIG = SpectrogramConfig(sample_rate=SR, n_fft=512, hop_length=256, n_mels=32)
T = np.arange(SR // 2) / SR


def measure(*waves: np.ndarray) -> dict[str, np.ndarray]:
    spec = AudioSpectrogram(CONFIG)
    return describe(spec.log_mel(np.stack(waves).astype(np.float32)), CONFIG)


def tone(freq: float, tau: float = 0.1, amp: float = 0.5) -> np.ndarray:
    return amp * np.sin(2 * np.pi * freq * T) * np.exp(-T / tau)


def test_each_descriptor_follows_what_it_names() -> None:
    noise = np.random.default_rng(0).standard_normal(T.size) * np.exp(-T / 0.1) * 0.2
    d = measure(tone(300), tone(3000), tone(300, tau=0.02), noise, tone(300, amp=0.05))
    assert d["brightness"][1] > 5 * d["brightness"][0]  # 3 kHz vs 300 Hz
    assert d["brightness"][0] == pytest.approx(300, rel=0.25)
    assert d["decay"][0] > 3 * d["decay"][2]  # a 0.1 s vs a 0.02 s decay
    assert d["decay"][0] == pytest.approx(0.1 * np.log(10) * 2 / 2, rel=0.35)  # -20 dB at tau*ln10
    assert d["noisiness"][3] > 0.3 > 0.05 > d["noisiness"][0]
    assert d["level"][0] - d["level"][4] == pytest.approx(20.0, abs=0.5)  # a tenth of the amplitude
    assert set(d) == set(DESCRIPTORS)


def test_silence_and_band_centres() -> None:
    d = measure(np.zeros(T.size))
    assert np.isfinite([d[k][0] for k in DESCRIPTORS]).all()
    assert d["decay"][0] == pytest.approx(0.0, abs=0.05)  # nothing after the loudest frame counts
    centres = band_centres(CONFIG)
    assert centres.shape == (32,)
    assert np.all(np.diff(centres) > 0)
    assert centres[-1] < SR / 2
