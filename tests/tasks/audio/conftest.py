"""Synthetic audio fixtures written into ``tmp_path`` with soundfile.

Reuse them from any audio test:

- ``make_wav(path, seconds, sr, channels, kind)`` writes one file (format from the suffix:
  .wav .flac .ogg .aiff .aif .mp3) and returns its path. It is also the ``make_audio`` fixture.
- ``synthetic_audio_dir``: 8 short good files (0.05 s to 3 s; 8k/22.05k/44.1k/48k; mono and
  stereo; WAV/FLAC/OGG/AIFF), one in a subfolder, plus a ``notes.txt`` that is ignored.
- ``bad_audio_dir``: 2 good files plus one of each bad case (see ``BAD_FILES``) and a
  ``readme.txt``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pytest
import soundfile as sf

KINDS = ("tone", "noise", "click", "chirp", "silence")

_FORMATS = {
    ".wav": ("WAV", "PCM_16"),
    ".flac": ("FLAC", "PCM_16"),
    ".ogg": ("OGG", "VORBIS"),
    ".aiff": ("AIFF", "PCM_16"),
    ".aif": ("AIFF", "PCM_16"),
    ".mp3": ("MP3", "MPEG_LAYER_III"),
}


def synth(
    seconds: float,
    sr: int = 48000,
    channels: int = 1,
    kind: str = "tone",
    freq: float = 440.0,
    amplitude: float = 0.5,
    seed: int = 0,
) -> np.ndarray:
    """Return float32 samples ``[frames, channels]`` of a synthetic sound.

    kind: "tone" (sine at ``freq``; channel c at ``freq * (c + 1)``), "noise" (a white-noise
    burst with a decaying envelope), "click" (impulses every 0.1 s), "chirp" (100 Hz to
    sr/4) or "silence" (all zeros).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    n = max(1, int(round(seconds * sr)))
    t = np.arange(n) / sr
    rng = np.random.default_rng(seed)
    out = np.zeros((n, channels), dtype=np.float64)
    for c in range(channels):
        if kind == "tone":
            out[:, c] = np.sin(2 * np.pi * freq * (c + 1) * t)
        elif kind == "noise":
            out[:, c] = rng.uniform(-1, 1, n) * np.exp(-3.0 * t / max(seconds, 1e-3))
        elif kind == "click":
            out[:: max(1, int(0.1 * sr)), c] = 1.0
        elif kind == "chirp":
            f1 = sr / 4
            out[:, c] = np.sin(2 * np.pi * (100 * t + (f1 - 100) * t**2 / (2 * max(seconds, 1e-3))))
    return (amplitude * out).astype(np.float32)


def make_wav(
    path: str | Path,
    seconds: float,
    sr: int = 48000,
    channels: int = 1,
    kind: str = "tone",
    **synth_kwargs: Any,
) -> Path:
    """Write a synthetic sound to ``path`` (format from its suffix) and return the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fmt, subtype = _FORMATS[p.suffix.lower()]
    data = synth(seconds, sr, channels, kind, **synth_kwargs)
    sf.write(str(p), data, sr, format=fmt, subtype=subtype)
    return p


# (relative path, seconds, rate, channels, kind)
SYNTHETIC_FILES = [
    ("click_short.wav", 0.05, 48000, 1, "click"),
    ("tone_8k.wav", 0.1, 8000, 1, "tone"),
    ("noise_22k_stereo.flac", 0.5, 22050, 2, "noise"),
    ("tone_44k.ogg", 1.0, 44100, 1, "tone"),
    ("chirp_48k.aiff", 1.5, 48000, 1, "chirp"),
    ("tone_long.wav", 2.6, 48000, 1, "tone"),
    ("noise_long_stereo.wav", 3.0, 48000, 2, "noise"),
    ("sub/click_44k.flac", 0.3, 44100, 2, "click"),
]

# file in bad_audio_dir -> a word its skip reason must contain
BAD_FILES = {
    "corrupt.wav": "not audio",
    "empty.wav": "empty",
    "notes.flac": "not audio",
    "silent.wav": "silent",
    ".hidden.wav": "hidden",
    ".cache/inside.wav": "hidden",
}
GOOD_IN_BAD_DIR = ("good_tone.wav", "sub/good_noise.flac")


class MakeAudio(Protocol):
    """The type of the ``make_audio`` fixture: ``make_wav``'s signature."""

    def __call__(
        self,
        path: str | Path,
        seconds: float,
        sr: int = 48000,
        channels: int = 1,
        kind: str = "tone",
        **synth_kwargs: Any,
    ) -> Path: ...


@pytest.fixture
def make_audio() -> MakeAudio:
    """The ``make_wav`` helper as a fixture."""
    return make_wav


@pytest.fixture
def synthetic_audio_dir(tmp_path: Path) -> Path:
    """A folder of the 8 ``SYNTHETIC_FILES`` (about 9 s in all) and an ignored notes.txt."""
    root = tmp_path / "synthetic"
    for i, (rel, seconds, sr, channels, kind) in enumerate(SYNTHETIC_FILES):
        make_wav(root / rel, seconds, sr, channels, kind, seed=i)
    (root / "notes.txt").write_text("not audio, ignored\n")
    return root


def write_bad_files(root: Path) -> None:
    """Write one file of each case in ``BAD_FILES`` into ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "corrupt.wav").write_bytes(np.random.default_rng(0).bytes(4096))
    (root / "empty.wav").write_bytes(b"")
    (root / "notes.flac").write_text("these are my notes, not a FLAC file\n" * 20)
    make_wav(root / "silent.wav", 0.5, kind="silence")
    make_wav(root / ".hidden.wav", 0.5)
    make_wav(root / ".cache" / "inside.wav", 0.5)


@pytest.fixture
def bad_audio_dir(tmp_path: Path) -> Path:
    """``BAD_FILES`` plus two good files (``GOOD_IN_BAD_DIR``) and an ignored readme.txt."""
    root = tmp_path / "bad"
    write_bad_files(root)
    make_wav(root / "good_tone.wav", 0.5)
    make_wav(root / "sub" / "good_noise.flac", 0.7, sr=44100, kind="noise")
    (root / "readme.txt").write_text("ignored\n")
    return root


@pytest.fixture
def only_bad_audio_dir(tmp_path: Path) -> Path:
    """A folder holding only the ``BAD_FILES`` (no usable audio)."""
    root = tmp_path / "only_bad"
    write_bad_files(root)
    return root
