"""AugmentationConfig validation and AugmentationPipeline behaviour (pure torch)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from smalltrain.errors import ConfigError
from smalltrain.tasks.audio.data.augment import (
    AugmentationConfig,
    AugmentationPipeline,
    fix_length,
    pitch_shift,
    softer_stroke,
)

SR = 48000


def tone(freq: float = 1000.0, seconds: float = 0.5, amp: float = 0.5) -> torch.Tensor:
    t = torch.arange(int(SR * seconds), dtype=torch.float32) / SR
    return amp * torch.sin(2 * math.pi * freq * t)


def rms_db(x: torch.Tensor) -> float:
    return 20 * math.log10(float(x.pow(2).mean().sqrt()))


def peak_hz(x: torch.Tensor) -> float:
    spectrum = torch.fft.rfft(x * torch.hann_window(x.shape[0])).abs()
    return float(spectrum.argmax()) * SR / x.shape[0]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_same_seed_same_output_and_different_seeds_differ() -> None:
    pipe = AugmentationPipeline(AugmentationConfig(noise_prob=1.0, pitch_shift_semitones=2.0))
    wave = tone()
    a = pipe(wave, gen(7))
    b = pipe(wave, gen(7))
    c = pipe(wave, gen(8))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_global_rng_is_not_used() -> None:
    pipe = AugmentationPipeline(AugmentationConfig(noise_prob=1.0))
    wave = tone()
    torch.manual_seed(1)
    a = pipe(wave, gen(3))
    torch.manual_seed(2)
    b = pipe(wave, gen(3))
    assert torch.equal(a, b)


@pytest.mark.parametrize("speed", [0.9, 1.1])
def test_speed_keeps_length_and_shifts_frequency(speed: float) -> None:
    cfg = AugmentationConfig(speed_range=(speed, speed), gain_db_range=(0, 0), noise_prob=0.0)
    wave = tone(seconds=1.0)
    out = AugmentationPipeline(cfg)(wave, gen(0))
    assert out.shape == wave.shape
    assert abs(peak_hz(out) - 1000.0 * speed) <= 3.0
    if speed < 1:  # slowed down: the end is zero-padded after truncation of nothing
        assert float(out.abs().max()) > 0.4


def test_gain_changes_rms_by_expected_db() -> None:
    cfg = AugmentationConfig(speed_range=(1.0, 1.0), gain_db_range=(3.0, 3.0), noise_prob=0.0)
    wave = tone()
    out = AugmentationPipeline(cfg)(wave, gen(0))
    assert rms_db(out) - rms_db(wave) == pytest.approx(3.0, abs=1e-3)


def test_a_softer_stroke_is_quieter_and_duller() -> None:
    low, high = tone(200.0), tone(8000.0)
    # 16 dB softer: the cutoff falls two octaves, 16 kHz -> 4 kHz
    assert rms_db(softer_stroke(low, 16.0, SR)) - rms_db(low) == pytest.approx(-16.0, abs=0.1)
    drop = rms_db(softer_stroke(high, 16.0, SR)) - rms_db(high)
    assert drop == pytest.approx(-16.0 - 10 * math.log10(1 + 2.0**2), abs=0.1)  # -23 dB
    # off: the draws (and so every augmented chunk) are what they were without the option
    plain = AugmentationPipeline(AugmentationConfig()).draw(gen(3))
    assert plain.velocity_db == 0.0
    strokes = AugmentationPipeline(AugmentationConfig(velocity_db=24.0))
    draws = [strokes.draw(gen(seed)) for seed in range(40)]
    assert draws[3].speed == plain.speed
    softer = [d.velocity_db for d in draws if d.velocity_db > 0]
    assert 8 <= len(softer) <= 32
    assert max(softer) <= 24.0


def test_noise_snr_is_within_range() -> None:
    cfg = AugmentationConfig(
        speed_range=(1.0, 1.0), gain_db_range=(0, 0), noise_prob=1.0, noise_snr_db_range=(20, 40)
    )
    pipe = AugmentationPipeline(cfg)
    wave = tone()
    snrs = []
    for seed in range(8):
        out = pipe(wave, gen(seed))
        snrs.append(rms_db(wave) - rms_db(out - wave))
    assert all(20.0 - 0.01 <= s <= 40.0 + 0.01 for s in snrs)
    assert max(snrs) - min(snrs) > 1.0  # the SNR really is drawn at random


def test_noise_prob_zero_adds_no_noise_and_silence_stays_silent() -> None:
    clean = AugmentationConfig(speed_range=(1.0, 1.0), gain_db_range=(0, 0), noise_prob=0.0)
    wave = tone()
    assert torch.equal(AugmentationPipeline(clean)(wave, gen(0)), wave)
    noisy = AugmentationConfig(noise_prob=1.0)
    silence = torch.zeros(4800)
    assert torch.equal(AugmentationPipeline(noisy)(silence, gen(0)), silence)


def test_pitch_shift_moves_frequency_and_keeps_length() -> None:
    wave = tone(seconds=1.0)
    up = pitch_shift(wave, 5.0)
    assert up.shape == wave.shape
    assert abs(peak_hz(up) - 1000.0 * 2 ** (5 / 12)) <= 5.0
    down = pitch_shift(wave, -12.0)
    assert abs(peak_hz(down) - 500.0) <= 5.0
    # duration kept: the tone still fills the middle of the output
    assert float(up[20000:28000].abs().max()) > 0.3


def test_pipeline_with_pitch_and_time_shift_keeps_length() -> None:
    cfg = AugmentationConfig(pitch_shift_semitones=3.0, time_shift_max_s=0.2, noise_prob=0.0)
    wave = tone(seconds=0.3)
    out = AugmentationPipeline(cfg)(wave, gen(5))
    assert out.shape == wave.shape
    assert out.dtype == torch.float32


def test_time_shift_is_circular() -> None:
    cfg = AugmentationConfig(
        speed_range=(1.0, 1.0), gain_db_range=(0, 0), noise_prob=0.0, time_shift_max_s=0.01
    )
    wave = torch.arange(4800, dtype=torch.float32)
    out = AugmentationPipeline(cfg)(wave, gen(1))
    assert sorted(out.tolist()) == wave.tolist()  # same samples, rotated
    assert not torch.equal(out, wave)


def test_fix_length() -> None:
    assert fix_length(torch.ones(10), 4).tolist() == [1.0] * 4
    assert fix_length(torch.ones(2), 4).tolist() == [1.0, 1.0, 0.0, 0.0]


def test_rejects_batched_input() -> None:
    with pytest.raises(ValueError, match="1-D"):
        AugmentationPipeline(AugmentationConfig())(torch.zeros(2, 100), gen(0))


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("speed_range", (1.2, 0.9), "low <= high"),
        ("speed_range", (0.1, 1.0), "0.5 <= low"),
        ("gain_db_range", (-6.0,), "(low, high)"),
        ("noise_snr_db_range", (20.0, float("nan")), "(low, high)"),
        ("noise_prob", 1.5, "[0, 1]"),
        ("pitch_shift_semitones", -1.0, "[0, 12]"),
        ("time_shift_max_s", -0.5, "seconds"),
    ],
)
def test_config_validation_names_field(field: str, value: object, rule: str) -> None:
    with pytest.raises(ConfigError) as info:
        AugmentationConfig(**{field: value})  # type: ignore[arg-type]
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}=")
    assert rule in str(info.value)


def test_config_round_trip_through_json() -> None:
    cfg = AugmentationConfig(speed_range=(0.95, 1.05), pitch_shift_semitones=1.5)
    data = json.loads(json.dumps(cfg.to_dict()))
    assert AugmentationConfig.from_dict(data) == cfg
    with pytest.raises(ConfigError, match="unknown field"):
        AugmentationConfig.from_dict({"speed": 1.0})
