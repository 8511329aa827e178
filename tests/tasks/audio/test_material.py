"""The material detector tells clicks from sustained tones and noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from smalltrain.tasks.audio.data.io import scan_folder
from smalltrain.tasks.audio.data.material import (
    analyse_wave,
    detect_material,
    detect_material_for_report,
)

SR = 22050


def _click(rng: np.random.Generator, seconds: float) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    body = np.sin(2 * np.pi * rng.uniform(60, 200) * t) + 0.5 * rng.normal(size=t.size)
    return (0.8 * body * np.exp(-t / rng.uniform(0.02, 0.08))).astype(np.float32)


def _sustained(rng: np.random.Generator, seconds: float) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    tone = np.sin(2 * np.pi * rng.uniform(200, 800) * t + 3 * np.sin(2 * np.pi * 0.5 * t))
    fade = np.minimum(1.0, t / 0.3)  # a soft start, like most recordings of held sounds
    return (0.3 * fade * (tone + 0.2 * rng.normal(size=t.size))).astype(np.float32)


def _write(folder: Path, make: object, n: int, seed: int) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(n):
        seconds = float(rng.uniform(0.3, 1.2)) if make is _click else float(rng.uniform(2, 6))
        wave = make(rng, seconds)  # type: ignore[operator]
        sf.write(folder / f"s{i}.wav", wave, SR)
    return folder


def test_folder_of_clicks_is_onset(tmp_path: Path) -> None:
    report = detect_material_for_report(scan_folder(_write(tmp_path / "clicks", _click, 6, 0)))
    assert report.kind == "onset"
    assert report.onset_fraction == 1.0
    assert report.n_files == 6
    assert "onset-aligned" in report.summary()


def test_folder_of_tones_and_noise_is_continuous(tmp_path: Path) -> None:
    report = detect_material_for_report(scan_folder(_write(tmp_path / "tones", _sustained, 6, 1)))
    assert report.kind == "continuous"
    assert report.onset_fraction == 0.0
    assert all(f.kind == "continuous" for f in report.files)


def test_half_and_half_is_mixed() -> None:
    rng = np.random.default_rng(2)
    waves = [_click(rng, 0.5) for _ in range(3)] + [_sustained(rng, 3.0) for _ in range(3)]
    report = detect_material(waves, SR)
    assert report.kind == "mixed"
    assert report.to_dict()["onset_fraction"] == 0.5


def test_repeated_hits_are_continuous() -> None:
    rng = np.random.default_rng(3)
    loop = np.concatenate([_click(rng, 0.25) for _ in range(8)])  # a 2 s drum loop
    info = analyse_wave(loop, SR, "loop.wav")
    assert info.kind == "continuous"
    assert info.later_onsets >= 2


def test_late_start_is_not_onset_aligned() -> None:
    rng = np.random.default_rng(4)
    wave = np.concatenate([np.zeros(SR // 2, dtype=np.float32), _click(rng, 0.5)])
    info = analyse_wave(wave, SR)
    assert info.start_s > 0.4
    assert info.kind == "continuous"


def test_empty_input_is_reported() -> None:
    report = detect_material([], SR)
    assert report.n_files == 0
    assert "no readable audio" in report.reasons[0]
