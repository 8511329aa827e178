"""The sound folders of the audio quality benchmark (``bench/quality.py``), each split by file
into ``train/`` and ``held/`` (3/4 and 1/4, fixed seed):

- ``sonic_pi``: ``../shared/data/audio/sonic_pi_cc0`` as it is (165 real samples, linked);
- ``oneshot``: its one-shots (bass drums, snares, drums, electronic hits, percussion, tabla: 98
  files) in three velocity layers, 0, -15 and -30 dB, the softer ones duller, as real kits
  have them; split by *source* file so the layers of one hit stay on one side;
- ``kit`` (not in the default list): the bass drums and snares alone, in the same three layers:
  39 training files, 16 s, so the auto preset picks *tiny*, the regime of a small drum kit;
- ``onset``: 48 synthetic drum-like one-shots (kicks, snares, hats, toms), 0.15-0.9 s each;
- ``continuous``: 24 synthetic held tones with vibrato, coloured noise and speech-like formant
  sweeps (a pulse train through three moving resonators), 2-4 s each.

Nothing from the shared folder is copied into the repository: the real sets are built in a
temporary work folder.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from smalltrain.tasks.audio.synth import drum_hit

REAL_SETS = ("sonic_pi", "oneshot", "kit")

SR = 48000
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared" / "data"  # the shared real data, as the other benches find it
SONIC_PI = SHARED / "audio" / "sonic_pi_cc0"
SEED = 0

# --- synthetic material -------------------------------------------------------------------------


def _hit(rng: np.random.Generator) -> np.ndarray:
    """One drum-like one-shot starting at sample 0 (the demo's material too)."""
    return drum_hit(rng, SR)


def _formant_sweep(rng: np.random.Generator, n_out: int) -> np.ndarray:
    """Speech-like sound: a pulse train through three moving formant resonators.

    Made at 16 kHz (the per-sample resonator loop is Python) and resampled to 48 kHz.
    """
    sr = 16000
    n = n_out // 3
    t = np.arange(n) / sr
    f0 = rng.uniform(100, 220) * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * t))
    pulses = np.diff(np.floor(np.cumsum(f0) / sr), prepend=0.0)
    out = np.zeros(n)
    for base, spread, bw in ((500, 300, 80), (1500, 700, 120), (2500, 400, 160)):
        fc = base + spread * np.sin(2 * np.pi * rng.uniform(1.5, 4.0) * t + rng.uniform(0, 6))
        r = np.exp(-np.pi * bw / sr)
        a1, a2 = -2 * r * np.cos(2 * np.pi * fc / sr), r * r
        y1 = y2 = 0.0
        y = np.empty(n)
        for i in range(n):  # a two-pole resonator with a time-varying centre
            y0 = pulses[i] - a1[i] * y1 - a2 * y2
            y[i], y2, y1 = y0, y1, y0
        out += y / (np.abs(y).max() + 1e-9)
    syllables = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(3, 5) * t) ** 2
    up = np.asarray(soxr.resample(out * syllables, sr, SR), dtype=np.float64)
    return np.pad(up, (0, max(0, n_out - up.shape[0])))[:n_out]


def _sustained(rng: np.random.Generator) -> np.ndarray:
    """A held tone, coloured noise or a formant sweep, 2-4 s, with soft edges."""
    kind = rng.choice(["tone", "noise", "speech"])
    n = int(rng.uniform(2.0, 4.0) * SR)
    t = np.arange(n) / SR
    if kind == "tone":
        f = rng.uniform(110, 660) * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
        phase = 2 * np.pi * np.cumsum(f) / SR
        wave = sum(np.sin(k * phase) / k for k in range(1, 6))
    elif kind == "noise":
        spec = np.fft.rfft(rng.normal(size=n))
        freqs = np.fft.rfftfreq(n, 1 / SR)
        centre = rng.uniform(300, 6000)
        spec *= 1 / (1 + (freqs / rng.uniform(200, 2000))) + np.exp(
            -(((freqs - centre) / 500) ** 2)
        )
        wave = np.fft.irfft(spec, n)
    else:
        wave = _formant_sweep(rng, n)
    edges = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.05)
    wave = np.asarray(wave) * edges
    return (0.5 * wave / (np.abs(wave).max() + 1e-9)).astype(np.float32)


# --- sets ---------------------------------------------------------------------------------------


def _split_names(names: list[str], seed: int) -> tuple[list[str], list[str]]:
    order = np.random.default_rng(seed).permutation(len(names))
    n_held = max(1, round(len(names) / 4))
    held = {names[i] for i in order[:n_held]}
    return [n for n in names if n not in held], [n for n in names if n in held]


def _synthetic_set(root: Path, make: Callable[[np.random.Generator], np.ndarray], n: int) -> None:
    rng = np.random.default_rng(SEED)
    names = [f"s{i:03d}.wav" for i in range(n)]
    train_names, _ = _split_names(names, SEED)
    for name in names:
        sub = "train" if name in train_names else "held"
        (root / sub).mkdir(parents=True, exist_ok=True)
        sf.write(root / sub / name, make(rng), SR, subtype="FLOAT")


def _sonic_pi_set(root: Path) -> None:
    names = sorted(p.name for p in SONIC_PI.glob("*.flac"))
    train_names, _ = _split_names(names, SEED)
    for name in names:
        sub = "train" if name in train_names else "held"
        (root / sub).mkdir(parents=True, exist_ok=True)
        (root / sub / name).symlink_to(SONIC_PI / name)  # nothing is copied


ONESHOT_PREFIXES = ("bd_", "sn_", "drum_", "elec_", "perc_", "tabla_")
# velocity layers: (name, gain dB, share of the one-pole low-pass mixed in: softer is darker)
VELOCITY_LAYERS = (("hard", 0.0, 0.0), ("medium", -15.0, 0.35), ("soft", -30.0, 0.7))


def _darken(wave: np.ndarray, sr: int, amount: float, cutoff_hz: float = 2500.0) -> np.ndarray:
    """Mix ``amount`` of a one-pole low-pass into ``wave`` (softer hits are duller)."""
    if amount <= 0:
        return wave
    from scipy.signal import lfilter  # scipy comes with librosa (the bench extra)

    a = math.exp(-2 * math.pi * cutoff_hz / sr)
    low = lfilter([1 - a], [1, -a], wave, axis=0)
    return (1 - amount) * wave + amount * low


def _oneshot_set(root: Path, prefixes: tuple[str, ...] = ONESHOT_PREFIXES) -> None:
    """The sonic_pi one-shots (bass drums, snares, drums, electronic hits, percussion, tabla) in
    three velocity layers 0, -15 and -30 dB, the softer ones darker, split by *source* file so
    the layers of one hit never sit on both sides. Files keep their native 44.1 kHz and
    channels (the loader resamples and mixes down as for any user folder)."""
    names = sorted(p.name for p in SONIC_PI.glob("*.flac") if p.name.startswith(prefixes))
    train_names, _ = _split_names(names, SEED)
    for name in names:
        sub = "train" if name in train_names else "held"
        (root / sub).mkdir(parents=True, exist_ok=True)
        wave, sr = sf.read(SONIC_PI / name, dtype="float64", always_2d=True)
        stem = name.removesuffix(".flac")
        for layer, gain_db, dark in VELOCITY_LAYERS:
            out = _darken(wave, sr, dark) * 10 ** (gain_db / 20)
            sf.write(root / sub / f"{stem}_{layer}.wav", out, sr, subtype="FLOAT")


def build_set(name: str, root: Path) -> Path:
    """Write (or link) the set's train/ and held/ folders under ``root / name``."""
    target = root / name
    if name == "sonic_pi":
        _sonic_pi_set(target)
    elif name == "oneshot":
        _oneshot_set(target)
    elif name == "kit":
        _oneshot_set(target, ("bd_", "sn_"))
    elif name == "onset":
        _synthetic_set(target, _hit, 48)
    elif name == "continuous":
        _synthetic_set(target, _sustained, 24)
    else:
        raise ValueError(f"unknown set {name!r}")
    return target
