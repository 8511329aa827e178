"""Audio task: a VAE on log-mel spectrograms trained on a folder of sounds.

``TrainingConfig`` here is the audio config (``smalltrain.tasks.detect.TrainingConfig`` is the
detection one). The names load lazily, so that a light process (the CLI, the web UI's server)
can ask the task registry about audio jobs without loading numpy or torch.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smalltrain.engine.checkpoints import load_checkpoint, manage_checkpoints, save_checkpoint
    from smalltrain.engine.devices import resolve_device
    from smalltrain.engine.events import MetricsHistory
    from smalltrain.engine.runner import TrainingRunner
    from smalltrain.tasks.audio.config import TrainingConfig
    from smalltrain.tasks.audio.data.augment import AugmentationConfig, AugmentationPipeline
    from smalltrain.tasks.audio.data.dataset import AudioTrainingDataset, split_files
    from smalltrain.tasks.audio.data.io import DatasetReport, load_audio, scan_folder
    from smalltrain.tasks.audio.data.spectrogram import AudioSpectrogram, SpectrogramConfig
    from smalltrain.tasks.audio.model.flat import ConvDecoder, ConvEncoder
    from smalltrain.tasks.audio.model.losses import compute_kl_divergence, get_kl_weight, vae_loss
    from smalltrain.tasks.audio.model.model import ConvVAE
    from smalltrain.tasks.audio.presets import get_adaptive_config
    from smalltrain.tasks.audio.task import AudioTask, inspect_audio
    from smalltrain.tasks.audio.training.epoch import train_epoch, validate_epoch
    from smalltrain.tasks.audio.training.train import train
    from smalltrain.tasks.audio.use.explore import explore, make_sound
    from smalltrain.tasks.audio.use.generate import interpolate, load_model, reconstruct, sample
    from smalltrain.tasks.audio.use.preview import generate_preview

_EXPORTS = {
    "AudioSpectrogram": "smalltrain.tasks.audio.data.spectrogram",
    "AudioTask": "smalltrain.tasks.audio.task",
    "AudioTrainingDataset": "smalltrain.tasks.audio.data.dataset",
    "AugmentationConfig": "smalltrain.tasks.audio.data.augment",
    "AugmentationPipeline": "smalltrain.tasks.audio.data.augment",
    "ConvDecoder": "smalltrain.tasks.audio.model.flat",
    "ConvEncoder": "smalltrain.tasks.audio.model.flat",
    "ConvVAE": "smalltrain.tasks.audio.model.model",
    "DatasetReport": "smalltrain.tasks.audio.data.io",
    "MetricsHistory": "smalltrain.engine.events",
    "SpectrogramConfig": "smalltrain.tasks.audio.data.spectrogram",
    "TrainingConfig": "smalltrain.tasks.audio.config",
    "TrainingRunner": "smalltrain.engine.runner",
    "compute_kl_divergence": "smalltrain.tasks.audio.model.losses",
    "explore": "smalltrain.tasks.audio.use.explore",
    "generate_preview": "smalltrain.tasks.audio.use.preview",
    "get_adaptive_config": "smalltrain.tasks.audio.presets",
    "get_kl_weight": "smalltrain.tasks.audio.model.losses",
    "inspect_audio": "smalltrain.tasks.audio.task",
    "interpolate": "smalltrain.tasks.audio.use.generate",
    "load_audio": "smalltrain.tasks.audio.data.io",
    "load_checkpoint": "smalltrain.engine.checkpoints",
    "load_model": "smalltrain.tasks.audio.use.generate",
    "make_sound": "smalltrain.tasks.audio.use.explore",
    "manage_checkpoints": "smalltrain.engine.checkpoints",
    "reconstruct": "smalltrain.tasks.audio.use.generate",
    "resolve_device": "smalltrain.engine.devices",
    "sample": "smalltrain.tasks.audio.use.generate",
    "save_checkpoint": "smalltrain.engine.checkpoints",
    "scan_folder": "smalltrain.tasks.audio.data.io",
    "split_files": "smalltrain.tasks.audio.data.dataset",
    "train": "smalltrain.tasks.audio.training.train",
    "train_epoch": "smalltrain.tasks.audio.training.epoch",
    "vae_loss": "smalltrain.tasks.audio.model.losses",
    "validate_epoch": "smalltrain.tasks.audio.training.epoch",
}

__all__ = [
    "AudioSpectrogram",
    "AudioTask",
    "AudioTrainingDataset",
    "AugmentationConfig",
    "AugmentationPipeline",
    "ConvDecoder",
    "ConvEncoder",
    "ConvVAE",
    "DatasetReport",
    "MetricsHistory",
    "SpectrogramConfig",
    "TrainingConfig",
    "TrainingRunner",
    "compute_kl_divergence",
    "explore",
    "generate_preview",
    "get_adaptive_config",
    "get_kl_weight",
    "inspect_audio",
    "interpolate",
    "load_audio",
    "load_checkpoint",
    "load_model",
    "make_sound",
    "manage_checkpoints",
    "reconstruct",
    "resolve_device",
    "sample",
    "save_checkpoint",
    "scan_folder",
    "split_files",
    "train",
    "train_epoch",
    "vae_loss",
    "validate_epoch",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return list(__all__)


class _Package(types.ModuleType):
    """Keeps an exported name when a submodule of the same name is imported (``train`` is
    both): Python's import sets the package attribute to the submodule, which would hide the
    function, as the eager imports used to prevent by coming last."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _EXPORTS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


# Where each module lived before the rooms (data/, model/, quality/, training/, use/; 2026-12).
# ``import smalltrain.tasks.audio.explore`` and the like still work, with a DeprecationWarning
# naming the new place. ``model`` is itself a room now: its package answers the old module's
# names (model/__init__.py).
_MOVED = {
    **dict.fromkeys(("augment", "dataset", "io", "material", "phase", "spectrogram", "synth"),
                    "data"),
    **dict.fromkeys(("flat", "heads", "losses", "prior", "sequence", "temporal"), "model"),
    **dict.fromkeys(("baseline", "frechet", "genscores", "metrics", "render_eval", "waveform"),
                    "quality"),
    **dict.fromkeys(("alerts", "checkpointing", "epoch", "run", "seen", "train"), "training"),
    **dict.fromkeys(("descriptors", "directions", "evaluate", "explore", "export",
                     "export_example", "generate", "mapfile", "preview", "targets"), "use"),
}  # fmt: skip


def moved_warning(old: str, new: str) -> None:
    warnings.warn(f"{old} moved to {new}: import it from there, or import the public names "
                  f"from smalltrain.tasks.audio", DeprecationWarning, stacklevel=3)  # fmt: skip


class _MovedModule(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers an old module path with the module at its new place (asked last, so only for
    names nothing else finds)."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        package, _, leaf = fullname.rpartition(".")
        if package != __name__ or leaf not in _MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: Any) -> types.ModuleType:
        leaf = spec.name.rpartition(".")[2]
        new = f"{__name__}.{_MOVED[leaf]}.{leaf}"
        moved_warning(spec.name, new)
        return importlib.import_module(new)

    def exec_module(self, module: types.ModuleType) -> None:
        """The module ran at its new place."""


if not any(isinstance(finder, _MovedModule) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModule())
