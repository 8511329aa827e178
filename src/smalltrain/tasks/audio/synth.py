"""Synthetic sound folders for the demo, benchmarks and tests: tones, noise bursts, clicks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def _tone(rng: np.random.Generator, sr: int, seconds: float) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    f0 = rng.uniform(110, 880)
    partials = sum(
        (0.5**k) * np.sin(2 * np.pi * f0 * (k + 1) * t + rng.uniform(0, 6.28)) for k in range(4)
    )
    attack = np.minimum(1.0, t / 0.02)
    return (0.3 * partials * attack * np.exp(-t * rng.uniform(0.2, 2.0))).astype(np.float32)


def _noise_burst(rng: np.random.Generator, sr: int, seconds: float) -> np.ndarray:
    n = int(sr * seconds)
    noise = rng.standard_normal(n)
    kernel = np.ones(int(rng.integers(1, 16))) / 16.0  # a crude low-pass: colour varies
    coloured = np.convolve(noise, kernel, mode="same")
    env = np.exp(-np.arange(n) / (sr * rng.uniform(0.05, 0.5)))
    return (0.5 * coloured * env / (np.max(np.abs(coloured)) + 1e-9)).astype(np.float32)


def _click(rng: np.random.Generator, sr: int, seconds: float) -> np.ndarray:
    n = int(sr * seconds)
    t = np.arange(n) / sr
    body = np.sin(2 * np.pi * rng.uniform(60, 200) * t) * np.exp(-t * 40)
    snap = rng.standard_normal(n) * np.exp(-t * 300)
    return (0.6 * (body + 0.5 * snap)).astype(np.float32)


KINDS = {"tone": _tone, "noise": _noise_burst, "click": _click}


def make_sound_folder(
    folder: str | Path, n_files: int = 12, *, seed: int = 0, kinds: tuple[str, ...] = tuple(KINDS)
) -> list[Path]:
    """Write ``n_files`` short sounds of mixed kind, rate (22.05–48 kHz), channels and length."""
    rng = np.random.default_rng(seed)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    rates = (48000, 44100, 22050)
    paths = []
    for i in range(n_files):
        kind = kinds[i % len(kinds)]
        sr = rates[i % len(rates)]
        seconds = float(rng.uniform(0.1, 0.6) if kind == "click" else rng.uniform(0.5, 2.5))
        mono = KINDS[kind](rng, sr, seconds)
        data = np.stack([mono, mono * 0.8], axis=1) if i % 2 else mono
        fmt = ("WAV", "FLAC")[i % 2]
        path = out / f"{kind}_{i:02d}.{fmt.lower()}"
        sf.write(path, data, sr, format=fmt)
        paths.append(path)
    return paths
