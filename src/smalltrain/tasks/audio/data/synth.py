"""Synthetic sound folders for the demo, benchmarks and tests.

``make_sound_folder``: a few tones, noise bursts and clicks of mixed rate, channels, length and
format (the loader's hard cases). ``make_drum_kit``: drum-like one-shots (kicks, snares, hats,
toms) of one family, the material a sample folder holds (the demo and ``bench/quality.py``).
"""

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


def _decay(n: int, sr: int, tau_s: float) -> np.ndarray:
    return np.exp(-np.arange(n) / sr / tau_s)


def drum_hit(rng: np.random.Generator, sr: int = 48000) -> np.ndarray:
    """One drum-like one-shot starting at sample 0: a kick, snare, hat or tom, 0.15-0.9 s."""
    kind = rng.choice(["kick", "snare", "hat", "tom"])
    dur = {"kick": 0.6, "snare": 0.4, "hat": 0.2, "tom": 0.8}[kind] * rng.uniform(0.75, 1.15)
    n = int(dur * sr)
    t = np.arange(n) / sr
    if kind in ("kick", "tom"):
        f_end = rng.uniform(45, 60) if kind == "kick" else rng.uniform(90, 160)
        freq = f_end + rng.uniform(60, 120) * np.exp(-t / rng.uniform(0.02, 0.05))
        body = np.sin(2 * np.pi * np.cumsum(freq) / sr) * _decay(n, sr, rng.uniform(0.1, 0.25))
        click = rng.normal(size=n) * _decay(n, sr, 0.004) * 0.3
        wave = body + click
    elif kind == "snare":
        tone = np.sin(2 * np.pi * rng.uniform(160, 240) * t) * _decay(n, sr, 0.05)
        wave = 0.5 * tone + 0.6 * rng.normal(size=n) * _decay(n, sr, rng.uniform(0.05, 0.12))
    else:
        noise = np.diff(rng.normal(size=n + 1))  # tilted towards the highs
        wave = 0.5 * noise * _decay(n, sr, rng.uniform(0.015, 0.05))
    return (0.8 * wave / (np.abs(wave).max() + 1e-9)).astype(np.float32)


def make_drum_kit(folder: str | Path, n_files: int = 40, *, seed: int = 0) -> list[Path]:
    """Write ``n_files`` drum-like one-shots (48 kHz mono WAV) to ``folder``."""
    rng = np.random.default_rng(seed)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n_files):
        path = out / f"hit_{i:02d}.wav"
        sf.write(path, drum_hit(rng), 48000, subtype="FLOAT")
        paths.append(path)
    return paths
