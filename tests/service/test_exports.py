"""``service.exports`` with a real tiny audio model: the ONNX export beside the model, its
parity with torch (same seed, same mel; a waveform close to ``smalltrain generate``'s), the
standalone ``example.py`` run with torch blocked, a missing package, and the atomic swap."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch

from smalltrain import paths
from smalltrain.errors import ConfigError, MissingDependency, ModelNotFound
from smalltrain.service import exports
from smalltrain.store import ModelEntry, ModelStore
from tests.support.audio import TrainedAudio

pytest.importorskip("onnxruntime", reason="the [export] extra is not installed")

#: Runs a script with every torch (and smalltrain) import refused.
_NO_TORCH = """
import runpy, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "smalltrain", "soxr"):
            raise ImportError(f"blocked: {name}")
sys.meta_path.insert(0, Block())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _register(home: Path, weights: Path, task: str, name: str = "m") -> Any:
    return ModelStore(paths.models_dir(home)).save(ModelEntry(
        dataset="data", name=name, weights=weights, task=task,
        config={}, metrics={}, base_model=None,
        epochs_completed=1, headline=("best_val_sc", 0.5), dataset_snapshot="",
        dataset_fingerprint="",
    ))  # fmt: skip


@pytest.fixture(scope="module")
def audio_export(
    trained_audio: TrainedAudio, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, exports.ExportInfo]:
    home = tmp_path_factory.mktemp("export-home")
    _register(home, trained_audio.model, "audio")
    return home, exports.export_model(home, "data/m", "onnx")


def _example(folder: Path) -> Any:
    sys.path.insert(0, str(folder))
    try:
        import example
    finally:
        sys.path.remove(str(folder))
    sys.modules.pop("example", None)
    return example


def test_export_is_written_beside_the_model_and_listed(
    audio_export: tuple[Path, exports.ExportInfo],
) -> None:
    home, export = audio_export
    folder = paths.models_dir(home) / "data" / "models" / "m" / "exports" / "onnx"
    assert export.folder == folder
    names = {"prior.onnx", "decoder.onnx", "encoder.onnx", "spectrogram.json", "example.py"}
    assert names <= set(export.files)
    assert json.loads((folder / "manifest.json").read_text())["model"] == "data/m"
    assert [e.format for e in exports.list_exports(folder.parents[1])] == ["onnx"]
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp left
    archive = exports.download_file(folder.parents[1], "onnx")
    assert archive.suffix == ".zip"
    assert archive.stat().st_size > 0


def test_same_seed_same_mel_and_a_close_waveform(
    audio_export: tuple[Path, exports.ExportInfo], trained_audio: TrainedAudio
) -> None:
    from smalltrain.tasks.audio.use.generate import load_model
    from smalltrain.tasks.audio.use.preview import render_mels

    _, export = audio_export
    example = _example(export.folder)
    model = example.Model(export.folder)
    loaded = load_model(trained_audio.model)
    for n, seed in ((1, 0), (3, 7)):  # 8 floats: torch's scalar path; 24: its vector path
        z = loaded.prior.sample(n, torch.Generator().manual_seed(seed), 0.8)
        expected = loaded.model.decode(z).detach().numpy()
        got = model.sample_mels(n, seed, 0.8)
        assert np.abs(got - expected).max() < 1e-4
    eps = example.torch_randn(5, (3, 17))
    assert (
        np.abs(eps - torch.randn(3, 17, generator=torch.Generator().manual_seed(5)).numpy()).max()
        < 1e-5
    )
    # the waveform: the same mel through both inversions (Griffin-Lim amplifies float rounding)
    wave_torch = render_mels(torch.from_numpy(expected), loaded.spectrogram)
    wave_onnx = model.render(expected)
    spec = loaded.spectrogram
    a = spec.stft_magnitude(wave_torch)
    b = spec.stft_magnitude(torch.from_numpy(wave_onnx))
    convergence = float(torch.linalg.norm(a - b) / torch.linalg.norm(a))
    assert convergence < 0.1, f"spectral convergence {convergence:.3f} between the inversions"
    mel_db = np.abs(spec.log_mel(wave_torch).numpy() - spec.log_mel(wave_onnx).numpy()).mean()
    assert mel_db < 1.0


def test_example_runs_without_torch(
    audio_export: tuple[Path, exports.ExportInfo], trained_audio: TrainedAudio, tmp_path: Path
) -> None:
    from smalltrain.tasks.audio.use.generate import load_model, reconstruct

    _, export = audio_export
    script = str(export.folder / "example.py")
    run = [sys.executable, "-c", _NO_TORCH, script]
    gen = subprocess.run([*run, "generate", "-n", "2", "--seed", "3", "--out", str(tmp_path / "g")],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert gen.returncode == 0, gen.stderr
    waves = sorted((tmp_path / "g").glob("*.wav"))
    assert len(waves) == 2
    assert all(sf.info(str(w)).samplerate == 16000 for w in waves)
    (tmp_path / "torch_user.py").write_text("import torch\n")
    blocked = subprocess.run([*run[:3], str(tmp_path / "torch_user.py")], capture_output=True,
                             text=True, timeout=60)  # fmt: skip
    assert "blocked: torch" in blocked.stderr  # the blocker itself works
    source = next(trained_audio.data.glob("*.wav"))
    rec = subprocess.run([*run, "reconstruct", str(source), "--out", str(tmp_path / "r.wav")],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert rec.returncode == 0, rec.stderr
    got, _ = sf.read(str(tmp_path / "r.wav"), dtype="float32")
    want, _ = sf.read(str(reconstruct(load_model(trained_audio.model), source, tmp_path / "t.wav")))
    assert got.shape == want.shape
    assert np.corrcoef(np.abs(got), np.abs(want))[0, 1] > 0.5  # same envelope


def test_wrong_format_missing_package_and_unknown_model(
    audio_export: tuple[Path, exports.ExportInfo], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, _ = audio_export
    with pytest.raises(ConfigError, match="exports to onnx"):
        exports.export_model(home, "data/m", "openvino")
    with pytest.raises(ModelNotFound):
        exports.export_model(home, "data/nope", "onnx")
    monkeypatch.setattr(exports, "_importable", lambda name: name != "onnxruntime")
    with pytest.raises(MissingDependency, match=r"pip install 'smalltrain\[export\]'"):
        exports.export_model(home, "data/m", "onnx")


def test_a_failed_export_keeps_the_previous_one(
    audio_export: tuple[Path, exports.ExportInfo], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, export = audio_export
    before = (export.folder / "manifest.json").read_text()

    def broken(*args: Any) -> str:
        (args[3] / "decoder.onnx").write_bytes(b"half")
        raise OSError("disk went away")

    monkeypatch.setattr(exports, "_run_export", broken)
    with pytest.raises(OSError, match="disk went away"):
        exports.export_model(home, "data/m", "onnx")
    assert (export.folder / "manifest.json").read_text() == before
    assert not [p for p in export.folder.parent.iterdir() if p.name.startswith(".")]
