"""Generate and reconstruct sounds with an exported smalltrain audio model: no torch, no smalltrain.

Needs numpy, onnxruntime and soundfile only. This file is copied into every audio export folder
as ``example.py``, beside ``prior.onnx``, ``decoder.onnx``, ``encoder.onnx`` and
``spectrogram.json``; smalltrain's tests run it there with torch blocked.

    python example.py generate -n 4 --seed 0 --out generated/
    python example.py reconstruct input.wav --out rebuilt.wav

The model works on log-mel spectrograms. Going back to a waveform is done here as smalltrain does
it: dB -> mel power -> linear power by nonnegative least squares -> magnitude -> fast Griffin-Lim
started from a phase-gradient (PGHI) estimate. ``--seed`` draws the same numbers as
``smalltrain generate --seed`` (torch's CPU generator is reproduced below), so both give the same
sounds, up to float rounding.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import soundfile as sf

HERE = Path(__file__).resolve().parent
AMIN = 1e-10
NNLS_FLOOR = 1e-17
LAMBDA_HANN = 0.25645
TOLERANCE_DB = 50.0
RISE = 2.0


# --- random numbers: torch.randn(shape, generator=torch.Generator().manual_seed(seed)) ----------


def torch_randn(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """The float32 normals torch's CPU generator gives for ``seed`` (both share MT19937)."""
    n = int(np.prod(shape))
    bits = np.random.RandomState(seed)._bit_generator  # init_genrand(seed), as torch seeds
    if n < 16:  # torch's scalar path: Box-Muller in double from 53-bit uniforms, pairs cached
        out: list[float] = []
        while len(out) < n:
            raw = bits.random_raw(4).astype(np.uint64)
            mask = np.uint64((1 << 53) - 1)
            u1 = float(((raw[0] << np.uint64(32)) | raw[1]) & mask) * 2.0**-53
            u2 = float(((raw[2] << np.uint64(32)) | raw[3]) & mask) * 2.0**-53
            radius, theta = math.sqrt(-2.0 * math.log1p(-u2)), 2.0 * math.pi * u1
            out += [radius * math.cos(theta), radius * math.sin(theta)]
        return np.array(out[:n], dtype=np.float32).reshape(shape)
    raw = bits.random_raw(n + 16).astype(np.uint64)  # vector path: 24-bit float uniforms
    uniform = ((raw & np.uint64((1 << 24) - 1)).astype(np.float64) * 2.0**-24).astype(np.float32)
    data = uniform[:n].copy()

    def box_muller_16(block: np.ndarray) -> None:
        radius = np.sqrt(-2 * np.log(1 - block[:8]))
        theta = np.float32(2 * math.pi) * block[8:16]
        block[:8], block[8:16] = radius * np.cos(theta), radius * np.sin(theta)

    for i in range(0, n - 15, 16):
        box_muller_16(data[i : i + 16])
    if n % 16:  # torch redraws the last 16 values from fresh uniforms
        tail = uniform[n : n + 16].copy()
        box_muller_16(tail)
        data[n - 16 :] = tail
    return data.reshape(shape)


# --- the spectrogram and its inverse (smalltrain's spectrogram.py and phase.py, in numpy) -------


class Spectrogram:
    """Log-mel analysis and the mel -> waveform inversion for the parameters in the json."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.p = params
        self.sr, self.n_fft, self.hop = params["sample_rate"], params["n_fft"], params["hop_length"]
        self.floor = float(params["floor_db"])
        self.basis = self._mel_basis().astype(np.float32)  # [n_mels, F]
        pinv = np.linalg.pinv(self._mel_basis()) * (self._mel_basis().sum(0) > 0)[:, None]
        self.pinv = pinv.astype(np.float32)
        n = np.arange(self.n_fft)
        self.window = (0.5 - 0.5 * np.cos(2 * np.pi * n / self.n_fft)).astype(np.float32)

    def _mel_basis(self) -> np.ndarray:
        f_sp, min_log_hz = 200.0 / 3, 1000.0
        min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0

        def to_mel(hz: np.ndarray) -> np.ndarray:
            mel = hz / f_sp
            log = hz >= min_log_hz
            mel[log] = min_log_mel + np.log(hz[log] / min_log_hz) / logstep
            return mel

        def to_hz(mel: np.ndarray) -> np.ndarray:
            hz = mel * f_sp
            log = mel >= min_log_mel
            hz[log] = min_log_hz * np.exp(logstep * (mel[log] - min_log_mel))
            return hz

        f_max = self.p["f_max"] if self.p["f_max"] is not None else self.sr / 2
        fft_freqs = np.fft.rfftfreq(self.n_fft, 1.0 / self.sr)
        lo, hi = to_mel(np.array([self.p["f_min"], f_max], dtype=np.float64))
        mel_f = to_hz(np.linspace(lo, hi, self.p["n_mels"] + 2))
        fdiff = np.diff(mel_f)
        ramps = mel_f[:, None] - fft_freqs[None, :]
        lower, upper = -ramps[:-2] / fdiff[:-1, None], ramps[2:] / fdiff[1:, None]
        weights = np.maximum(0.0, np.minimum(lower, upper))
        return weights * (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]

    # forward
    def _frames(self, wave: np.ndarray) -> np.ndarray:
        half = self.n_fft // 2
        pad = [(0, 0), (half, half)]
        padded = np.pad(wave, pad, mode="reflect") if wave.shape[-1] > half else np.pad(wave, pad)
        count = (padded.shape[-1] - self.n_fft) // self.hop + 1
        index = np.arange(count)[:, None] * self.hop + np.arange(self.n_fft)[None, :]
        return padded[:, index]  # [B, T, n_fft]

    def log_mel(self, wave: np.ndarray) -> np.ndarray:
        """dB log-mel ``[B, n_mels, T]`` of float32 waves ``[B, N]``, clamped at the floor."""
        spec = np.fft.rfft(self._frames(wave.astype(np.float32)) * self.window, axis=-1)
        power = (spec.real**2 + spec.imag**2).astype(np.float32) @ self.basis.T
        db = 10 * np.log10(np.maximum(power, AMIN))
        return np.maximum(db, self.floor).transpose(0, 2, 1)

    def normalize(self, db: np.ndarray) -> np.ndarray:
        return ((db - self.floor) / -self.floor).astype(np.float32)

    def denormalize(self, x: np.ndarray) -> np.ndarray:
        return x * -self.floor + self.floor

    # inverse
    def mel_to_linear(self, mel_power: np.ndarray, n_iter: int) -> np.ndarray:
        """Nonnegative least squares, Lee-Seung updates from the clamped pseudo-inverse."""
        y = np.maximum(mel_power, 0.0).astype(np.float32)
        x = np.maximum(self.pinv @ y, NNLS_FLOOR)
        numer = self.basis.T @ y
        for _ in range(n_iter):
            denom = np.maximum(self.basis.T @ (self.basis @ x), NNLS_FLOOR)
            x = np.maximum(x * numer / denom, NNLS_FLOOR)
        return x

    def _overlap_add(self, frames: np.ndarray) -> np.ndarray:
        n_batch, n_frames, n_fft = frames.shape
        out = np.zeros((n_batch, (n_frames - 1) * self.hop + n_fft), dtype=frames.dtype)
        for t in range(n_frames):
            out[:, t * self.hop : t * self.hop + n_fft] += frames[:, t]
        return out

    def _istft(self, spec: np.ndarray, length: int, envelope: np.ndarray) -> np.ndarray:
        frames = np.fft.irfft(spec, n=self.n_fft, axis=-1).astype(np.float32) * self.window
        start = self.n_fft // 2
        out = self._overlap_add(frames)[:, start : start + length]
        out = out / np.maximum(envelope[start : start + length], 1e-11)
        if out.shape[1] < length:
            out = np.pad(out, [(0, 0), (0, length - out.shape[1])])
        return out

    def _spectrum(self, wave: np.ndarray) -> np.ndarray:
        return np.fft.rfft(self._frames(wave) * self.window, axis=-1)

    def griffin_lim(self, magnitude: np.ndarray, n_iter: int, length: int) -> np.ndarray:
        """Fast Griffin-Lim (momentum 0.99) from the PGHI phase; magnitude ``[B, F, T]``."""
        n_frames = magnitude.shape[-1]
        inner = length if length // self.hop + 1 == n_frames else (n_frames - 1) * self.hop
        mag = magnitude.transpose(0, 2, 1).astype(np.float32)  # frames first
        estimate = np.exp(1j * pghi_phase(mag, self.n_fft, self.hop)).astype(np.complex64)
        squares = np.broadcast_to(self.window**2, (1, n_frames, self.n_fft))
        envelope = self._overlap_add(np.ascontiguousarray(squares))[0]
        previous = np.zeros_like(estimate)
        alpha = 0.99 / 1.99
        for _ in range(n_iter):
            rebuilt = self._spectrum(self._istft(with_magnitude(estimate, mag), inner, envelope))
            estimate, previous = rebuilt - alpha * previous, rebuilt
        return self._istft(with_magnitude(estimate, mag), length, envelope)

    def to_audio(self, db: np.ndarray, length: int) -> np.ndarray:
        """Waves ``[B, length]`` from dB log-mels ``[B, n_mels, T]``."""
        power = np.power(10.0, db / 10.0).astype(np.float32)
        magnitude = np.sqrt(self.mel_to_linear(power, self.p["nnls_iter"]))
        return self.griffin_lim(magnitude, self.p["griffin_lim_iter"], length)


def with_magnitude(z: np.ndarray, magnitude: np.ndarray) -> np.ndarray:
    return z * (magnitude / np.sqrt(z.real**2 + z.imag**2 + 1e-30))


def _derivative(x: np.ndarray, axis: int) -> np.ndarray:
    return np.gradient(x, axis=axis)  # central differences, one-sided at the ends


def pghi_phase(mag: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """A starting phase ``[B, T, F]`` for an STFT magnitude ``[B, T, F]`` (see phase.py)."""
    n_batch, n_frames, n_bins = mag.shape
    if n_frames < 3 or n_bins < 3:
        return np.zeros_like(mag)
    lam = LAMBDA_HANN * n_fft**2
    floor = mag.max(axis=(1, 2), keepdims=True) * 10 ** (-TOLERANCE_DB / 20)
    logs = np.log(np.maximum(np.maximum(mag, floor), 1e-30))
    d_n = _derivative(logs, 1)
    d_n[:, 0] = d_n[:, 1]
    bins = np.arange(n_bins, dtype=np.float32)
    t_grad = 2 * math.pi * hop * bins / n_fft + (hop * n_fft / lam) * _derivative(logs, 2)
    f_grad = -(lam / (hop * n_fft)) * d_n
    f_int = np.zeros_like(f_grad)
    f_int[:, :, 1:] = np.cumsum((f_grad[:, :, 1:] + f_grad[:, :, :-1]) / 2, axis=2)
    live = mag > floor
    reach = max(1, n_fft // (2 * hop))
    after = np.concatenate([mag[:, 1:], mag[:, -1:]], axis=1)
    phase = np.empty_like(mag)
    phase[:, 0] = f_int[:, 0]
    for n in range(1, n_frames):
        continued = phase[:, n - 1] + (t_grad[:, n - 1] + t_grad[:, n]) / 2
        here = mag[:, n]
        onset = (here >= mag[:, n - 1]) & (here >= after[:, n])
        onset &= here > RISE * mag[:, max(0, n - reach) : n].min(axis=1)
        onset |= ~live[:, n - 1]
        weight = here * ~onset
        diff = continued - f_int[:, n]
        anchor = np.arctan2((weight * np.sin(diff)).sum(1, keepdims=True),
                            (weight * np.cos(diff)).sum(1, keepdims=True))  # fmt: skip
        phase[:, n] = np.where(onset, f_int[:, n] + anchor, continued)
    return phase - math.pi * bins


# --- the model ---------------------------------------------------------------------------------


class Model:
    """The exported model: prior, decoder and encoder sessions and the spectrogram."""

    def __init__(self, folder: Path = HERE) -> None:
        self.params = json.loads((folder / "spectrogram.json").read_text(encoding="utf-8"))
        self.spec = Spectrogram(self.params)
        options = ort.SessionOptions()
        options.log_severity_level = 3

        def session(name: str) -> Any:
            return ort.InferenceSession(
                str(folder / name), options, providers=["CPUExecutionProvider"]
            )

        self.prior, self.decoder = session("prior.onnx"), session("decoder.onnx")
        self.encoder = session("encoder.onnx")

    def sample_mels(self, n: int, seed: int = 0, temperature: float = 1.0) -> np.ndarray:
        """Normalized mels ``[n, 1, n_mels, T]`` decoded from ``n`` draws of the prior."""
        eps = torch_randn(seed, (n, self.params["latent_dim"]))
        t = np.array([temperature], dtype=np.float32)
        (z,) = self.prior.run(None, {"eps": eps, "temperature": t})
        (mels,) = self.decoder.run(None, {"z": z})
        return np.asarray(mels)

    def render(self, mels: np.ndarray, length: int | None = None) -> np.ndarray:
        """Normalized mels ``[B, 1, n_mels, T]`` -> waves ``[B, N]`` (below the floor: floor)."""
        db = self.spec.denormalize(np.maximum(mels[:, 0], 0.0))
        return self.spec.to_audio(db, length or (db.shape[-1] - 1) * self.spec.hop)

    def generate(self, n: int, seed: int = 0, temperature: float = 1.0) -> np.ndarray:
        """``n`` new sounds ``[n, N]``, one chunk each."""
        return self.render(self.sample_mels(n, seed, temperature))

    def reconstruct(self, wave: np.ndarray) -> np.ndarray:
        """Encode a mono wave at the model's rate chunk by chunk, decode the means, rejoin."""
        size = self.params["chunk_samples"]
        pieces = [wave[s : s + size] for s in range(0, max(len(wave), 1), size)]
        chunks = np.stack([np.pad(p, (0, size - len(p))) for p in pieces]).astype(np.float32)
        mels = self.spec.normalize(self.spec.log_mel(chunks))[:, None]
        mu, _ = self.encoder.run(None, {"mel": mels})
        (decoded,) = self.decoder.run(None, {"z": mu})
        return self.render(np.asarray(decoded), size).reshape(-1)[: max(len(wave), 1)]


def load_mono(path: Path, rate: int) -> np.ndarray:
    """A file as float32 mono at ``rate`` (FFT resampling when its rate differs)."""
    data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    if sr != rate:
        want = int(round(len(mono) * rate / sr))
        spectrum = np.fft.rfft(mono)
        keep = np.zeros(want // 2 + 1, dtype=spectrum.dtype)
        k = min(len(keep), len(spectrum))
        keep[:k] = spectrum[:k]
        mono = np.fft.irfft(keep, n=want) * (want / len(mono))
    return mono.astype(np.float32)


def write_wav(path: Path, wave: np.ndarray, rate: int) -> Path:
    """16-bit WAV; peaks above 0 dBFS are scaled down (as smalltrain writes them)."""
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    data = wave * (0.999 / peak) if peak > 0.999 else wave
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data.astype(np.float32), rate, subtype="PCM_16")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="new sounds, one chunk each")
    gen.add_argument("-n", "--count", type=int, default=4)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--temperature", type=float, default=1.0)
    gen.add_argument("--out", type=Path, default=Path("generated"))
    rec = commands.add_parser("reconstruct", help="encode a sound and decode it again")
    rec.add_argument("audio", type=Path)
    rec.add_argument("--out", type=Path, default=Path("reconstructed.wav"))
    args = parser.parse_args(argv)
    model = Model()
    rate = model.params["sample_rate"]
    if args.command == "generate":
        waves = model.generate(args.count, args.seed, args.temperature)
        for i, wave in enumerate(waves):
            print(write_wav(args.out / f"sample_{i:03d}.wav", wave, rate))
    else:
        print(write_wav(args.out, model.reconstruct(load_mono(args.audio, rate)), rate))


if __name__ == "__main__":
    main()
