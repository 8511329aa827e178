"""An audio model to ONNX: the prior, the decoder and the encoder, with a standalone example.

The folder written holds ``prior.onnx`` (``eps [N, latent_dim]``, ``temperature [1]`` -> ``z``),
``decoder.onnx`` (``z [N, latent_dim]`` -> normalized mels ``[N, 1, n_mels, T]``),
``encoder.onnx`` (``mel [N, 1, n_mels, T]`` -> ``mu``, ``logvar``), ``spectrogram.json`` (what
the inversion needs), ``example.py`` (numpy + onnxruntime + soundfile: generate and reconstruct,
inversion included; the source is ``export_example.py``) and ``README.txt``.

torch's TorchScript-based exporter (``dynamo=False``) is used: it needs only the ``onnx``
package, while the dynamo exporter would also need onnxscript.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from smalltrain.tasks.audio.data.spectrogram import DEFAULT_GL_ITER, DEFAULT_NNLS_ITER
from smalltrain.tasks.audio.use.generate import load_model

__all__ = ["OPSET", "export_onnx"]

OPSET = 17
#: The standalone example's source (not imported here: it imports onnxruntime).
EXAMPLE = Path(__file__).with_name("export_example.py")

README = """\
A smalltrain audio model exported to ONNX.

  prior.onnx        eps [N, {latent_dim}] float32 (standard normal), temperature [1] -> z
  decoder.onnx      z [N, {latent_dim}] -> normalized log-mel [N, 1, {n_mels}, {n_frames}]
  encoder.onnx      normalized log-mel [N, 1, {n_mels}, {n_frames}] -> mu, logvar
  spectrogram.json  sample rate, STFT and mel parameters, and the inversion's settings
  example.py        generate and reconstruct sounds with numpy + onnxruntime + soundfile

Normalized log-mel: dB (reference power 1.0) mapped so {floor_db} dB -> 0 and 0 dB -> 1.
Chunks are {chunk_seconds} s ({chunk_samples} samples at {sample_rate} Hz).

  pip install numpy onnxruntime soundfile
  python example.py generate -n 4 --seed 0 --out generated/
  python example.py reconstruct input.wav --out rebuilt.wav

The same --seed gives the same sounds as `smalltrain generate MODEL --seed N`.
"""


class _Prior(nn.Module):
    """``z = mean + temperature * eps @ root.T``: the Gaussian new sounds are drawn from."""

    def __init__(self, mean: Tensor, root: Tensor) -> None:
        super().__init__()
        self.mean = nn.Parameter(mean.float(), requires_grad=False)
        self.root_t = nn.Parameter(root.float().T.contiguous(), requires_grad=False)

    def forward(self, eps: Tensor, temperature: Tensor) -> Tensor:
        return self.mean + temperature * (eps @ self.root_t)


class _Decoder(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: Tensor) -> Tensor:
        return self.model.decode(z)  # type: ignore[operator]


class _Encoder(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, mel: Tensor) -> tuple[Tensor, Tensor]:
        return self.model.encode(mel)  # type: ignore[operator]


def _onnx(module: nn.Module, inputs: tuple[Tensor, ...], path: Path, names: dict[str, Any]) -> None:
    batch = {name: {0: "batch"} for name in names["dynamic"]}
    with warnings.catch_warnings():  # shape checks traced as constants: the shapes are fixed
        warnings.simplefilter("ignore")
        _export(module, inputs, path, names, batch)


def _export(
    module: nn.Module, inputs: tuple[Tensor, ...], path: Path, names: dict[str, Any], batch: Any
) -> None:
    torch.onnx.export(
        module.eval(),
        inputs,
        str(path),
        input_names=names["inputs"],
        output_names=names["outputs"],
        dynamic_axes=batch,
        opset_version=OPSET,
        dynamo=False,
    )


def spectrogram_params(loaded: Any) -> dict[str, Any]:
    """What ``example.py`` needs: the spectrogram config, chunking, latent size, inversion."""
    cfg = loaded.config
    return {
        **loaded.spectrogram.config.to_dict(),
        "chunk_seconds": float(cfg.chunk_seconds),
        "chunk_samples": int(cfg.chunk_samples),
        "n_frames": int(cfg.n_frames),
        "latent_dim": int(loaded.model.latent_dim),
        "nnls_iter": DEFAULT_NNLS_ITER,
        "griffin_lim_iter": DEFAULT_GL_ITER,
        "griffin_lim_momentum": 0.99,
        "griffin_lim_init": "pghi",
    }


@torch.no_grad()
def export_onnx(model_file: str | Path, out_dir: str | Path) -> list[Path]:
    """Write the ONNX files, ``spectrogram.json``, ``example.py`` and ``README.txt``.

    Returns:
        The files written, in ``out_dir``.

    Raises:
        CheckpointError: ``model_file`` is not an audio model.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    loaded = load_model(model_file, "cpu")
    model = loaded.model.eval()
    params = spectrogram_params(loaded)
    dim, mels, frames = params["latent_dim"], params["n_mels"], params["n_frames"]
    prior = loaded.prior
    z = torch.zeros(2, dim)
    prior_names = {"inputs": ["eps", "temperature"], "outputs": ["z"], "dynamic": ["eps", "z"]}
    _onnx(_Prior(prior.mean, prior.root), (z, torch.ones(1)), out / "prior.onnx", prior_names)
    _onnx(_Decoder(model), (z,), out / "decoder.onnx",
          {"inputs": ["z"], "outputs": ["mel"], "dynamic": ["z", "mel"]})  # fmt: skip
    _onnx(_Encoder(model), (torch.zeros(2, 1, mels, frames),), out / "encoder.onnx",
          {"inputs": ["mel"], "outputs": ["mu", "logvar"],
           "dynamic": ["mel", "mu", "logvar"]})  # fmt: skip
    (out / "spectrogram.json").write_text(json.dumps(params, indent=2) + "\n", encoding="utf-8")
    shutil.copyfile(EXAMPLE, out / "example.py")
    (out / "README.txt").write_text(README.format(**params), encoding="utf-8")
    names = ("prior.onnx", "decoder.onnx", "encoder.onnx", "spectrogram.json", "example.py",
             "README.txt")  # fmt: skip
    return [out / n for n in names]
