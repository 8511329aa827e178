"""Audio task: a VAE on log-mel spectrograms trained on a folder of sounds.

``TrainingConfig`` here is the audio config (``smalltrain.tasks.detection.TrainingConfig`` is the
detection one).
"""

from __future__ import annotations

from smalltrain.engine.checkpoints import load_checkpoint, manage_checkpoints, save_checkpoint
from smalltrain.engine.devices import resolve_device
from smalltrain.engine.events import MetricsHistory
from smalltrain.engine.runner import TrainingRunner
from smalltrain.tasks.audio.augment import AugmentationConfig, AugmentationPipeline
from smalltrain.tasks.audio.config import TrainingConfig
from smalltrain.tasks.audio.dataset import AudioTrainingDataset, split_files
from smalltrain.tasks.audio.epoch import train_epoch, validate_epoch
from smalltrain.tasks.audio.flat import ConvDecoder, ConvEncoder
from smalltrain.tasks.audio.generate import interpolate, load_model, reconstruct, sample
from smalltrain.tasks.audio.io import DatasetReport, load_audio, scan_folder
from smalltrain.tasks.audio.losses import compute_kl_divergence, get_kl_weight, vae_loss
from smalltrain.tasks.audio.model import ConvVAE
from smalltrain.tasks.audio.presets import get_adaptive_config
from smalltrain.tasks.audio.preview import generate_preview
from smalltrain.tasks.audio.spectrogram import AudioSpectrogram, SpectrogramConfig
from smalltrain.tasks.audio.task import AudioTask, inspect_audio
from smalltrain.tasks.audio.train import train

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
    "generate_preview",
    "get_adaptive_config",
    "get_kl_weight",
    "inspect_audio",
    "interpolate",
    "load_audio",
    "load_checkpoint",
    "load_model",
    "manage_checkpoints",
    "reconstruct",
    "resolve_device",
    "sample",
    "save_checkpoint",
    "scan_folder",
    "split_files",
    "train",
    "train_epoch",
    "validate_epoch",
    "vae_loss",
]
