"""Audio loading and folder scanning (smalltrain.tasks.audio.data.io) on real files in tmp_path."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from smalltrain.engine.context import DatasetReport as DatasetReportProtocol
from smalltrain.errors import DatasetError
from smalltrain.tasks.audio.data.io import (
    TARGET_SR,
    AudioLoadError,
    DatasetReport,
    file_fingerprint,
    load_audio,
    scan_folder,
)
from tests.tasks.audio.conftest import MakeAudio

FORMATS = [".wav", ".flac", ".ogg", ".aiff"]
if "MP3" in sf.available_formats():
    FORMATS.append(".mp3")


@pytest.mark.parametrize("suffix", FORMATS)
def test_load_every_format_as_float32_mono_48k(
    tmp_path: Path, make_audio: MakeAudio, suffix: str
) -> None:
    path = make_audio(tmp_path / f"tone{suffix}", 0.25, sr=48000, freq=1000.0)
    wave = load_audio(path)
    assert wave.dtype == np.float32
    assert wave.ndim == 1
    # MP3 encoders add priming/padding samples; the lossless formats are exact
    assert abs(wave.shape[0] - 12000) <= (2000 if suffix == ".mp3" else 0)
    assert 0.3 < float(np.abs(wave).max()) < 0.7


def test_stereo_downmix_is_channel_mean(tmp_path: Path, make_audio: MakeAudio) -> None:
    path = make_audio(tmp_path / "stereo.wav", 0.1, sr=48000, channels=2, kind="noise")
    raw, _ = sf.read(str(path), dtype="float32", always_2d=True)
    wave = load_audio(path)
    np.testing.assert_allclose(wave, raw.mean(axis=1), atol=1e-7)


def test_resample_44k_to_48k_keeps_length_and_frequency(
    tmp_path: Path, make_audio: MakeAudio
) -> None:
    path = make_audio(tmp_path / "tone44.wav", 1.0, sr=44100, freq=1000.0)
    wave = load_audio(path)
    assert abs(wave.shape[0] - 48000) <= 1
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(wave.shape[0])))
    peak_hz = np.argmax(spectrum) * TARGET_SR / wave.shape[0]
    assert abs(peak_hz - 1000.0) <= 2.0


def test_load_to_other_rate(tmp_path: Path, make_audio: MakeAudio) -> None:
    path = make_audio(tmp_path / "tone.flac", 0.5, sr=48000)
    assert load_audio(path, target_sr=16000).shape[0] == 8000


def test_load_errors_name_file_and_reason(tmp_path: Path, make_audio: MakeAudio) -> None:
    bad = tmp_path / "junk.wav"
    bad.write_text("definitely not audio")
    with pytest.raises(AudioLoadError, match="junk.wav: not audio") as info:
        load_audio(bad)
    assert isinstance(info.value, DatasetError)
    assert "remove it" in str(info.value)
    with pytest.raises(AudioLoadError, match="missing.wav: no such file"):
        load_audio(tmp_path / "missing.wav")
    (tmp_path / "empty.flac").write_bytes(b"")
    with pytest.raises(AudioLoadError, match=r"empty.flac: empty file \(0 bytes\)"):
        load_audio(tmp_path / "empty.flac")
    # a FLAC cut short (a download that stopped): said in words, not libsndfile's "Error : "
    whole = make_audio(tmp_path / "whole.flac", 1.0, sr=48000).read_bytes()
    (tmp_path / "cut.flac").write_bytes(whole[: len(whole) // 3])
    with pytest.raises(AudioLoadError, match=r"cut.flac: damaged or cut short partway") as cut:
        load_audio(tmp_path / "cut.flac")
    assert "Error :" not in str(cut.value)


def test_scan_synthetic_folder(synthetic_audio_dir: Path) -> None:
    report = scan_folder(synthetic_audio_dir)
    assert len(report.files) == 8
    assert report.skipped == []
    assert report.ignored == 1  # notes.txt
    rels = [f.rel for f in report.files]
    assert rels == sorted(rels)
    assert "sub/click_44k.flac" in rels
    assert report.total_duration_s == pytest.approx(9.05, abs=1e-3)
    assert report.sample_rates == {8000: 1, 22050: 1, 44100: 2, 48000: 4}
    assert report.channels == {1: 5, 2: 3}
    assert report.snapshot() == "8 files, 9.0 s"
    assert report.used_paths() == [f.path for f in report.files]
    assert isinstance(report, DatasetReportProtocol)
    assert report.kind == "audio"


def test_scan_is_deterministic_and_fingerprint_tracks_content(
    synthetic_audio_dir: Path, make_audio: MakeAudio
) -> None:
    first = scan_folder(synthetic_audio_dir)
    assert scan_folder(synthetic_audio_dir).fingerprint == first.fingerprint
    target = synthetic_audio_dir / "tone_long.wav"
    before = file_fingerprint(target)
    make_audio(target, 2.6, kind="noise")
    assert file_fingerprint(target) != before
    assert scan_folder(synthetic_audio_dir).fingerprint != first.fingerprint


def test_report_serialises_and_formats(bad_audio_dir: Path) -> None:
    report = scan_folder(bad_audio_dir)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["kind"] == "audio"
    assert data["fingerprint"] == report.fingerprint
    assert len(data["skipped"]) == len(report.skipped)
    again = DatasetReport.from_dict(data)
    assert again.fingerprint == report.fingerprint
    assert again.files == report.files
    assert again.skipped == report.skipped
    assert "material" not in report.format()  # not assessed by scan_folder
    report.material, report.material_summary = "one-shots", "one-shots (2 of 2 onset-aligned)"
    assert DatasetReport.from_dict(report.to_dict()).material == "one-shots"
    assert "material:       one-shots (2 of 2" in report.format()
    text = report.format()
    assert "files used:     2" in text
    assert "44100 Hz" in text
    for skipped in report.skipped:
        assert f"{skipped.path}: {skipped.reason}" in text


def test_bad_inputs_are_skipped_with_reasons(bad_audio_dir: Path) -> None:
    report = scan_folder(bad_audio_dir)
    assert [f.rel for f in report.files] == ["good_tone.wav", "sub/good_noise.flac"]
    reasons = {s.path: s.reason for s in report.skipped}
    assert reasons["corrupt.wav"].startswith("not audio: ")
    assert reasons["notes.flac"] == "not audio: Format not recognised"
    assert reasons["empty.wav"] == "empty file (0 bytes)"
    assert reasons["silent.wav"].startswith("silent (peak -inf dBFS")
    assert reasons[".hidden.wav"] == "hidden file"
    assert reasons[".cache/inside.wav"] == "hidden file (inside hidden folder '.cache')"
    assert len(reasons) == 6
    assert report.ignored == 1  # readme.txt


def test_quiet_file_under_threshold_is_silent(tmp_path: Path, make_audio: MakeAudio) -> None:
    make_audio(tmp_path / "loud.wav", 0.2)
    make_audio(tmp_path / "quiet.flac", 0.2, amplitude=10 ** (-70 / 20))  # -70 dBFS peak
    report = scan_folder(tmp_path)
    assert [f.rel for f in report.files] == ["loud.wav"]
    assert report.skipped[0].reason.startswith("silent (peak -70.")
    # a stricter threshold keeps it
    assert len(scan_folder(tmp_path, silence_db=-90.0).files) == 2


def test_nan_samples_are_corrupt_and_hidden_junk_is_not_counted(
    tmp_path: Path, make_audio: MakeAudio
) -> None:
    make_audio(tmp_path / "good.wav", 0.2)
    data = np.full(4800, 0.1, dtype=np.float32)
    data[100] = np.nan
    sf.write(str(tmp_path / "nan.wav"), data, 48000, subtype="FLOAT")
    (tmp_path / ".DS_Store").write_bytes(b"junk")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: main")
    report = scan_folder(tmp_path)
    assert [f.rel for f in report.files] == ["good.wav"]
    assert [(s.path, s.reason) for s in report.skipped] == [
        ("nan.wav", "corrupt: samples are NaN or infinite")
    ]
    assert report.ignored == 0


def test_silence_check_streams_long_files(tmp_path: Path, make_audio: MakeAudio) -> None:
    # loud only at the very end: the block-wise scan must still reach it
    data = np.zeros(48000 * 4, dtype=np.float32)
    data[-10:] = 0.5
    sf.write(str(tmp_path / "late.wav"), data, 48000)
    report = scan_folder(tmp_path)
    assert [f.rel for f in report.files] == ["late.wav"]


def test_truncated_header_file_is_skipped(tmp_path: Path, make_audio: MakeAudio) -> None:
    good = make_audio(tmp_path / "good.wav", 0.2)
    (tmp_path / "cut.wav").write_bytes(good.read_bytes()[:40])
    report = scan_folder(tmp_path)
    assert [f.rel for f in report.files] == ["good.wav"]
    assert report.skipped[0].path == "cut.wav"
    assert report.skipped[0].reason.split(":")[0] in ("not audio", "zero frames", "corrupt")


def test_only_bad_files_raise_clear_error(only_bad_audio_dir: Path) -> None:
    with pytest.raises(DatasetError) as info:
        scan_folder(only_bad_audio_dir)
    message = str(info.value)
    assert str(only_bad_audio_dir) in message
    assert "no usable audio" in message
    assert "6 file(s) skipped" in message
    assert "empty file (0 bytes)" in message
    assert "and 1 more" in message  # only the first 5 reasons are listed
    assert "WAV, FLAC, OGG, MP3, AIFF" in message


def test_empty_folder_and_missing_path(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(DatasetError, match="1 file\\(s\\) without an audio extension"):
        scan_folder(tmp_path)
    with pytest.raises(DatasetError, match="no such file or folder"):
        scan_folder(tmp_path / "nope")


def test_single_file_path(tmp_path: Path, make_audio: MakeAudio) -> None:
    path = make_audio(tmp_path / "one.ogg", 1.5, sr=22050, channels=2)
    report = scan_folder(path)
    assert len(report.files) == 1
    info = report.files[0]
    assert (info.rel, info.sample_rate, info.channels, info.frames) == ("one.ogg", 22050, 2, 33075)
    assert math.isclose(info.duration_s, 1.5)
    assert report.snapshot() == "1 file, 1.5 s"


def test_snapshot_uses_minutes(tmp_path: Path, make_audio: MakeAudio) -> None:
    # 75 s of audio at 8 kHz stays tiny on disk
    make_audio(tmp_path / "long.wav", 75.0, sr=8000, kind="noise")
    assert scan_folder(tmp_path).snapshot() == "1 file, 1.2 min"
