"""``check_sound``: the one check of a sound to reconstruct, whoever gives it (an upload, a
microphone's recording, a dataset's file): any rate and channel count passes; a clip shorter
than 0.1 s or a silent one is refused with a message naming it and what to do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from smalltrain.errors import DatasetError
from smalltrain.tasks.audio.use.generate import check_sound


def _tone(seconds: float, sr: int) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return 0.3 * np.sin(2 * np.pi * 220 * t) * np.exp(-4 * t)


def test_a_short_stereo_clip_at_any_rate_passes(tmp_path: Path) -> None:
    for sr in (8000, 22050, 44100, 96000):
        tone = _tone(0.12, sr)
        sf.write(tmp_path / f"clip{sr}.wav", np.stack([tone, -0.5 * tone], 1), sr)
        check_sound(tmp_path / f"clip{sr}.wav", "the recording")


def test_a_click_or_silence_is_refused_saying_why(tmp_path: Path) -> None:
    sf.write(tmp_path / "click.wav", _tone(0.05, 44100), 44100)
    with pytest.raises(DatasetError, match=r"^the recording is 0\.05 s long: .*at least 0\.1 s"):
        check_sound(tmp_path / "click.wav", "the recording")
    sf.write(tmp_path / "quiet.flac", np.full((48000, 2), 3e-4), 48000)
    with pytest.raises(DatasetError, match=r"^quiet\.flac is silent \(peak -70 dBFS.*microphone"):
        check_sound(tmp_path / "quiet.flac")
    sf.write(tmp_path / "zeros.wav", np.zeros(4800), 48000)
    with pytest.raises(DatasetError, match=r"peak -inf dBFS"):
        check_sound(tmp_path / "zeros.wav")
