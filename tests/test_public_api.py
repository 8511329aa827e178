"""The public API is deliberate: ``__all__`` is exactly each module's public names, and they
import. (The layers and the absence of import circles are checked by import-linter, run by
``make lint``; see ``[tool.importlinter]`` in pyproject.toml.)"""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

import smalltrain


@pytest.mark.parametrize(
    "module",
    [
        "smalltrain.tasks.audio",
        "smalltrain.tasks.detect",
        "smalltrain.store",
    ],
)
def test_all_is_exactly_the_public_names(module: str) -> None:
    mod = importlib.import_module(module)
    lazy = getattr(mod, "_EXPORTS", None)
    if lazy is not None:  # names loaded on first use: each must resolve to what it says
        assert sorted(mod.__all__) == sorted(lazy)
        for name in mod.__all__:
            assert getattr(mod, name) is getattr(importlib.import_module(lazy[name]), name)
        return
    public = {
        name
        for name, value in vars(mod).items()
        if not name.startswith("_")
        and not isinstance(value, ModuleType)
        and name != "annotations"  # from __future__
    }
    assert sorted(mod.__all__) == sorted(public)


def test_lazy_top_level_exports_resolve() -> None:
    lazy = set(smalltrain.__all__) - {"__version__"}
    assert lazy == set(smalltrain._EXPORTS)
    for name in sorted(lazy):
        assert getattr(smalltrain, name).__name__ == name


def test_seed_contract_names() -> None:
    from smalltrain.tasks import audio, detect

    for name in (
        "ConvVAE", "ConvEncoder", "ConvDecoder", "vae_loss", "get_kl_weight",
        "compute_kl_divergence", "AudioSpectrogram", "SpectrogramConfig", "TrainingConfig",
        "get_adaptive_config", "AudioTrainingDataset", "AugmentationPipeline", "MetricsHistory",
        "save_checkpoint", "load_checkpoint", "manage_checkpoints", "generate_preview",
        "train_epoch", "validate_epoch", "train", "TrainingRunner",
    ):  # fmt: skip
        assert hasattr(audio, name), name
    assert detect.TrainingConfig is not audio.TrainingConfig
    main = {"TrainingManager", "TrainingJob", "ModelStore", "DatasetStore", "ResourceMonitor"}
    assert main <= set(smalltrain.__all__)  # each resolves: test_lazy_top_level_exports_resolve


def test_unknown_attribute_raises() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = smalltrain.no_such_name


def test_a_lazy_name_is_not_hidden_by_its_submodule() -> None:
    """``smalltrain.tasks.audio.training.train`` is both a function and a submodule; importing the
    submodule first (as the tasks do) must leave the package's ``train`` the function."""
    import subprocess
    import sys

    code = (
        "import smalltrain.tasks.audio.training.train, smalltrain.tasks.audio as a, inspect; "
        "print(inspect.isfunction(a.train))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
