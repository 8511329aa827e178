"""The exported names exist and import (the public API is deliberate), and layers hold."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import smalltrain

SRC = Path(__file__).resolve().parents[1] / "src" / "smalltrain"


@pytest.mark.parametrize(
    "module",
    ["smalltrain", "smalltrain.tasks.audio", "smalltrain.tasks.detection", "smalltrain.store"],
)
def test_every_exported_name_exists(module: str) -> None:
    mod = importlib.import_module(module)
    assert mod.__all__, module
    for name in mod.__all__:
        assert getattr(mod, name) is not None, f"{module}.{name}"


def test_seed_contract_names() -> None:
    from smalltrain.tasks import audio, detection

    for name in (
        "ConvVAE", "ConvEncoder", "ConvDecoder", "vae_loss", "get_kl_weight",
        "compute_kl_divergence", "AudioSpectrogram", "SpectrogramConfig", "TrainingConfig",
        "get_adaptive_config", "AudioTrainingDataset", "AugmentationPipeline", "MetricsHistory",
        "save_checkpoint", "load_checkpoint", "manage_checkpoints", "generate_preview",
        "train_epoch", "validate_epoch", "train", "TrainingRunner",
    ):  # fmt: skip
        assert hasattr(audio, name), name
    assert detection.TrainingConfig is not audio.TrainingConfig
    for name in ("TrainingManager", "TrainingJob", "ModelStore", "DatasetStore", "ResourceMonitor"):
        assert getattr(smalltrain, name) is not None


def test_unknown_attribute_raises() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = smalltrain.no_such_name  # type: ignore[attr-defined]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return {n for n in names if n.startswith("smalltrain")}


# lower layers never import higher ones (DESIGN.md, "Layers")
_FORBIDDEN = {
    "tasks": ("smalltrain.store", "smalltrain.cli", "smalltrain.ui", "smalltrain.engine.manager",
              "smalltrain.engine.scheduler", "smalltrain.engine.executors"),
    "store": ("smalltrain.cli", "smalltrain.ui", "smalltrain.engine.manager",
              "smalltrain.engine.scheduler"),
}  # fmt: skip
_ENGINE_CORE = ("events", "checkpoints", "runner", "jobs", "resources", "context", "config",
                "fsutil", "locks", "tensorboard")  # fmt: skip


@pytest.mark.parametrize("layer", sorted(_FORBIDDEN))
def test_layer_never_imports_higher_layers(layer: str) -> None:
    for path in (SRC / layer).rglob("*.py"):
        bad = {n for n in _imports(path) if n.startswith(_FORBIDDEN[layer])}
        assert not bad, f"{path.relative_to(SRC)} imports {sorted(bad)}"


def test_engine_core_imports_only_base_and_engine_core() -> None:
    allowed = tuple(f"smalltrain.engine.{m}" for m in _ENGINE_CORE) + (
        "smalltrain.errors", "smalltrain.paths", "smalltrain.engine",
    )  # fmt: skip
    for module in _ENGINE_CORE:
        path = SRC / "engine" / f"{module}.py"
        bad = {n for n in _imports(path) if not n.startswith(allowed) and n != "smalltrain"}
        assert not bad, f"engine/{module}.py imports {sorted(bad)}"
