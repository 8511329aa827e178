"""Waveform augmentation in pure torch: speed, pitch, gain, noise and time shift.

Every random draw comes from the ``torch.Generator`` passed to ``AugmentationPipeline.__call__``,
so an augmented chunk depends only on that generator's seed, never on worker processes or on
the global RNG. The output always has the input's length (truncated or zero-padded).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from smalltrain.engine.config import check
from smalltrain.errors import ConfigError

_PV_N_FFT = 1024
_PV_HOP = 256
VELOCITY_CUTOFF_HZ = 16000.0  # the low-pass of a stroke 0 dB softer...
VELOCITY_DB_PER_OCTAVE = 8.0  # ...falls an octave for every this many dB softer
VELOCITY_PROB = 0.5


def _check_range(name: str, value: Any, lo: float, hi: float) -> None:
    ok = (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(v, (int, float)) and math.isfinite(v) for v in value)
        and lo <= value[0] <= value[1] <= hi
    )
    check(name, value, ok, f"must be (low, high) with {lo:g} <= low <= high <= {hi:g}")


@dataclass(frozen=True)
class AugmentationConfig:
    """Which augmentations run and how strong they are; validated on creation.

    Args:
        speed_range: speed factor drawn uniformly (0.9 = slower and lower, 1.1 = faster).
        gain_db_range: gain in dB drawn uniformly.
        noise_snr_db_range: signal-to-noise ratio in dB of the added white noise.
        noise_prob: probability of adding noise to a chunk.
        pitch_shift_semitones: 0 = off; else a shift drawn within ±value, duration kept.
        time_shift_max_s: 0 = off; else a circular shift of up to ±value seconds. Circular
            (not zero-filled) so continuous material never gets an artificial gap.
        velocity_db: 0 = off; else half the chunks are played softer, as a lighter stroke:
            up to this many dB quieter and, as real velocity layers, duller (a first-order
            low-pass whose cutoff falls an octave every ``VELOCITY_DB_PER_OCTAVE`` dB).
    """

    speed_range: tuple[float, float] = (0.9, 1.1)
    gain_db_range: tuple[float, float] = (-6.0, 6.0)
    noise_snr_db_range: tuple[float, float] = (20.0, 40.0)
    noise_prob: float = 0.5
    pitch_shift_semitones: float = 0.0
    time_shift_max_s: float = 0.0
    velocity_db: float = 0.0

    def __post_init__(self) -> None:
        _check_range("speed_range", self.speed_range, 0.5, 2.0)
        _check_range("gain_db_range", self.gain_db_range, -40.0, 40.0)
        _check_range("noise_snr_db_range", self.noise_snr_db_range, -20.0, 120.0)
        check("noise_prob", self.noise_prob, 0.0 <= self.noise_prob <= 1.0, "must be in [0, 1]")
        check(
            "pitch_shift_semitones",
            self.pitch_shift_semitones,
            0.0 <= self.pitch_shift_semitones <= 12.0,
            "must be in [0, 12] (0 = off)",
        )
        check(
            "time_shift_max_s",
            self.time_shift_max_s,
            0.0 <= self.time_shift_max_s <= 60.0,
            "must be in [0, 60] seconds (0 = off)",
        )
        check("velocity_db", self.velocity_db, 0.0 <= self.velocity_db <= 60.0,
              "must be in [0, 60] dB (0 = off)")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (ranges become lists)."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AugmentationConfig:
        """Rebuild a validated config; lists become tuples.

        Raises:
            ConfigError: an unknown field or an invalid value.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in names:
                raise ConfigError(key, value, f"unknown field; valid fields: {sorted(names)}")
            values[key] = tuple(value) if isinstance(value, list) else value
        return cls(**values)


def _resample_linear(wave: torch.Tensor, length: int) -> torch.Tensor:
    """Resample a 1-D signal to ``length`` samples by linear interpolation (cheap)."""
    if length == wave.shape[0]:
        return wave
    out = F.interpolate(wave[None, None], size=length, mode="linear", align_corners=False)
    return out[0, 0]


def _nearest_peak(mag: torch.Tensor) -> torch.Tensor:
    """For each bin of ``mag`` ``[F, T]``, the index of the nearest local magnitude peak."""
    n_bins = mag.shape[0]
    left = F.pad(mag[:-1], (0, 0, 1, 0), value=-1.0)
    right = F.pad(mag[1:], (0, 0, 0, 1), value=-1.0)
    is_peak = (mag >= left) & (mag > right)
    bins = torch.arange(n_bins)[:, None].expand_as(mag)
    below = torch.where(is_peak, bins, torch.full_like(bins, -n_bins)).cummax(dim=0).values
    rev = torch.where(is_peak, bins, torch.full_like(bins, 2 * n_bins)).flip(0)
    above = (-(-rev).cummax(dim=0).values).flip(0)
    return torch.where(bins - below <= above - bins, below, above).clamp(0, n_bins - 1)


def _phase_vocoder(spec: torch.Tensor, rate: float, hop: int) -> torch.Tensor:
    """Time-stretch a complex STFT ``[F, T]`` by ``rate`` (> 1 = shorter).

    The classic phase vocoder (as librosa's) plus identity phase locking (Laroche & Dolson):
    each bin keeps its original phase offset from the nearest spectral peak, which removes
    the "phasiness" and the cancellation the plain algorithm gives on steady tones.
    """
    n_bins, n_frames = spec.shape
    steps = torch.arange(0, n_frames, rate, dtype=torch.float64)
    idx = steps.floor().long()
    alpha = (steps - idx).to(spec.real.dtype)[None]
    padded = F.pad(spec, (0, 2))
    s0, s1 = padded[:, idx], padded[:, idx + 1]
    mag = (1 - alpha) * s0.abs() + alpha * s1.abs()
    expected = torch.linspace(0, math.pi * hop, n_bins, dtype=torch.float64)[:, None]
    dphase = s1.angle().double() - s0.angle().double() - expected
    dphase = dphase - 2 * math.pi * torch.round(dphase / (2 * math.pi))
    advance = torch.cumsum(expected + dphase, dim=1)
    phase = spec[:, :1].angle().double() + F.pad(advance[:, :-1], (1, 0))
    peak = _nearest_peak(s0.abs())
    offset = s0.angle().double() - torch.gather(s0.angle().double(), 0, peak)
    locked = torch.gather(phase, 0, peak) + offset
    return torch.polar(mag, locked.to(mag.dtype))


def pitch_shift(wave: torch.Tensor, semitones: float) -> torch.Tensor:
    """Shift pitch by ``semitones`` keeping the duration: resample, then phase-vocoder stretch.

    The output has the input's length.
    """
    n = wave.shape[0]
    if semitones == 0.0 or n < _PV_N_FFT:
        return wave
    ratio = 2.0 ** (semitones / 12.0)
    shorter = _resample_linear(wave, max(1, round(n / ratio)))  # pitch up by ratio, shorter
    window = torch.hann_window(_PV_N_FFT, dtype=wave.dtype)
    spec = torch.stft(shorter, _PV_N_FFT, _PV_HOP, window=window, center=True, return_complex=True)
    stretched = _phase_vocoder(spec, 1.0 / ratio, _PV_HOP)
    return torch.istft(stretched, _PV_N_FFT, _PV_HOP, window=window, center=True, length=n)


def fix_length(wave: torch.Tensor, length: int) -> torch.Tensor:
    """Truncate or zero-pad a 1-D signal to ``length`` samples."""
    if wave.shape[0] >= length:
        return wave[:length]
    return F.pad(wave, (0, length - wave.shape[0]))


def softer_stroke(wave: torch.Tensor, db: float, sample_rate: int) -> torch.Tensor:
    """``wave`` as a stroke ``db`` softer: ``db`` quieter and through a zero-phase first-order
    low-pass at ``VELOCITY_CUTOFF_HZ / 2 ** (db / VELOCITY_DB_PER_OCTAVE)``."""
    n = wave.shape[0]
    cutoff = VELOCITY_CUTOFF_HZ / 2.0 ** (db / VELOCITY_DB_PER_OCTAVE)
    freqs = torch.fft.rfftfreq(n, d=1.0 / sample_rate)
    response = (1.0 + (freqs / cutoff) ** 2).rsqrt() * 10.0 ** (-db / 20.0)
    return torch.fft.irfft(torch.fft.rfft(wave) * response.to(wave.dtype), n=n)


def _uniform(u: torch.Tensor, lo: float, hi: float) -> float:
    return lo + float(u) * (hi - lo)


@dataclass(frozen=True)
class AugmentationDraw:
    """The settings drawn for one chunk: what ``AugmentationPipeline.apply`` does to it.

    ``noise_snr_db`` is None when no noise is added; ``shift_samples`` is the circular shift.
    """

    speed: float
    pitch_semitones: float
    gain_db: float
    noise_snr_db: float | None
    shift_samples: int
    velocity_db: float = 0.0  # how much softer (and duller) the stroke is made

    def to_dict(self, sample_rate: int) -> dict[str, Any]:
        """The settings as JSON, the shift also in seconds at ``sample_rate``."""
        out = dataclasses.asdict(self)
        out["shift_s"] = self.shift_samples / sample_rate
        return out


class AugmentationPipeline:
    """Speed → pitch → gain → noise → time shift → length fix, all seeded by a generator.

    Args:
        config: the augmentation settings.
        sample_rate: the rate of the waves it will see (for the time shift).
    """

    def __init__(self, config: AugmentationConfig, sample_rate: int = 48000) -> None:
        self.config = config
        self.sample_rate = sample_rate

    def __call__(self, wave: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Return an augmented copy of a 1-D float wave with the same length.

        All randomness comes from ``generator``; the same seed gives the same output.
        """
        return self.apply(wave, self.draw(generator), generator)

    def draw(self, generator: torch.Generator) -> AugmentationDraw:
        """The settings one chunk gets: a fixed number of draws from ``generator``."""
        cfg = self.config
        # A fixed number of draws up front keeps each draw's meaning stable across settings.
        u = torch.rand(6, generator=generator, dtype=torch.float64)
        soft = 0.0
        if cfg.velocity_db > 0:  # drawn after the others: without it every draw is unchanged
            v = torch.rand(2, generator=generator, dtype=torch.float64)
            soft = _uniform(v[1], 0.0, cfg.velocity_db) if float(v[0]) < VELOCITY_PROB else 0.0
        semis = cfg.pitch_shift_semitones
        max_shift = round(cfg.time_shift_max_s * self.sample_rate)
        return AugmentationDraw(
            speed=_uniform(u[0], *cfg.speed_range),
            pitch_semitones=_uniform(u[1], -semis, semis) if semis > 0 else 0.0,
            gain_db=_uniform(u[2], *cfg.gain_db_range),
            noise_snr_db=_uniform(u[4], *cfg.noise_snr_db_range)
            if float(u[3]) < cfg.noise_prob
            else None,
            shift_samples=round(_uniform(u[5], -max_shift, max_shift)) if max_shift > 0 else 0,
            velocity_db=soft,
        )

    def apply(
        self, wave: torch.Tensor, draw: AugmentationDraw, generator: torch.Generator
    ) -> torch.Tensor:
        """``wave`` augmented with the settings of ``draw``; the noise comes from ``generator``."""
        if wave.dim() != 1:
            raise ValueError(f"expected a 1-D wave [N], got shape {tuple(wave.shape)}")
        n = wave.shape[0]
        out = wave.float()
        if draw.speed != 1.0:
            out = _resample_linear(out, max(1, round(n / draw.speed)))
        if self.config.pitch_shift_semitones > 0:
            out = pitch_shift(out, draw.pitch_semitones)
        out = fix_length(out, n)
        if draw.gain_db != 0.0:
            out = out * (10.0 ** (draw.gain_db / 20.0))
        if draw.velocity_db > 0:
            out = softer_stroke(out, draw.velocity_db, self.sample_rate)
        if draw.noise_snr_db is not None:
            out = self._add_noise(out, draw.noise_snr_db, generator)
        if draw.shift_samples:
            out = torch.roll(out, draw.shift_samples)
        return fix_length(out, n)

    @staticmethod
    def _add_noise(wave: torch.Tensor, snr_db: float, generator: torch.Generator) -> torch.Tensor:
        """Add white noise scaled so the signal-to-noise ratio is exactly ``snr_db``."""
        signal_rms = wave.pow(2).mean().sqrt()
        if float(signal_rms) == 0.0:
            return wave  # no signal to measure a ratio against
        noise = torch.randn(wave.shape[0], generator=generator, dtype=wave.dtype)
        noise = noise / noise.pow(2).mean().sqrt().clamp_min(1e-12)
        return wave + noise * (signal_rms / (10.0 ** (snr_db / 20.0)))
