"""TrainingConfig validation and serialisation, presets, get_adaptive_config."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch

from smalltrain.engine.config import apply_overrides, parse_assignments
from smalltrain.engine.devices import resolve_device
from smalltrain.errors import ConfigError
from smalltrain.tasks.audio.config import TrainingConfig
from smalltrain.tasks.audio.presets import (
    MIN_STEPS,
    PATIENCE_STEPS,
    PRESETS,
    SMOOTHING_STEPS,
    estimate_chunks,
    get_adaptive_config,
)


@dataclass
class FileInfo:
    duration_s: float


@dataclass
class Report:
    """A stand-in for the audio DatasetReport (get_adaptive_config duck-types it)."""

    files: list[Any]
    material: str | None = None
    total_duration_s: float = field(init=False)

    def __post_init__(self) -> None:
        self.total_duration_s = sum(f.duration_s for f in self.files)


def report(n_files: int, seconds_each: float, material: str | None = None) -> Report:
    return Report([FileInfo(seconds_each) for _ in range(n_files)], material)


@pytest.mark.parametrize(
    ("changes", "field_name", "rule"),
    [
        ({"batch_size": 0}, "batch_size", "must be >= 1"),
        ({"epochs": -1}, "epochs", "must be >= 1"),
        ({"learning_rate": 0.0}, "learning_rate", "must be > 0"),
        ({"val_fraction": 1.0}, "val_fraction", "[0, 1)"),
        ({"kl_schedule": "cosine"}, "kl_schedule", "must be one of linear, cyclical"),
        ({"material": "drums"}, "material", "must be one of"),
        ({"speed_range": (1.2, 0.8)}, "speed_range", "low, high"),
        ({"time_shift_max_s": 2.0}, "time_shift_max_s", "chunk_seconds"),
        ({"model_capacity": 0.0}, "model_capacity", "> 0"),
        ({"chunk_hop_seconds": 0.0}, "chunk_hop_seconds", "> 0"),
        ({"device": "tpu"}, "device", "cuda"),
        ({"epochs": 2.5}, "epochs", "integer"),
        ({"augmentation": "yes"}, "augmentation", "true or false"),
        ({"warmup_epochs": 50}, "warmup_epochs", "< epochs"),
        ({"floor_db": 10.0}, "floor_db", "negative"),
        ({"latent_dim": 64, "latent_frames": 12}, "latent_frames", "divide latent_dim (64)"),
        ({"latent_layout": "grid"}, "latent_layout", "must be one of temporal, flat"),
        (
            {"latent_global": 10, "chunk_gain": True, "latent_frames": 12, "latent_dim": 60},
            "latent_frames",
            "latent_dim less latent_global and chunk_gain (49)",
        ),
        ({"latent_global": -1}, "latent_global", ">= 0"),
        ({"latent_global": 4, "latent_layout": "flat"}, "latent_global", "flat"),
        ({"chunk_gain": True, "latent_layout": "flat"}, "chunk_gain", "flat"),
        ({"latent_global": 64, "latent_dim": 64}, "latent_dim", "latent_global + chunk_gain"),
    ],
)
def test_invalid_values_name_field_value_and_rule(
    changes: dict[str, Any], field_name: str, rule: str
) -> None:
    with pytest.raises(ConfigError) as info:
        TrainingConfig(**changes)
    err = info.value
    assert err.field == field_name
    assert err.value == changes[field_name]
    assert rule in err.rule
    assert str(err).startswith(f"{field_name}=")


def test_global_code_and_gain_reach_the_model_and_the_summary() -> None:
    cfg = TrainingConfig(latent_dim=60, latent_global=11, chunk_gain=True)
    assert cfg.step_floats == 48
    assert cfg.resolved_latent_frames == 12  # auto: a divisor of 48, up to 12
    kwargs = cfg.model_kwargs()
    assert (kwargs["global_dim"], kwargs["gain"], kwargs["latent_frames"]) == (11, True, 12)
    assert "12 steps x 4 + 11 for the whole chunk + 1 for its peak level" in cfg.describe()
    # a temporal config saved before these fields existed still loads, as it was
    old = {k: v for k, v in cfg.to_dict().items() if k not in ("latent_global", "chunk_gain")}
    again = TrainingConfig.from_dict(old)
    assert (again.latent_layout, again.latent_global, again.chunk_gain) == ("temporal", 0, False)


def test_defaults_and_derived_values() -> None:
    cfg = TrainingConfig()
    assert (cfg.chunk_samples, cfg.chunk_hop_samples, cfg.n_frames) == (48000, 48000, 94)
    half = TrainingConfig(chunk_hop_seconds=0.5)
    assert half.chunk_hop_samples == 24000
    assert cfg.spectrogram_kwargs() == {
        "sample_rate": 48000,
        "n_fft": 2048,
        "hop_length": 512,
        "n_mels": 128,
        "floor_db": -80.0,
    }
    assert cfg.model_kwargs()["n_frames"] == 94


def test_dict_round_trip_through_json() -> None:
    cfg = TrainingConfig(epochs=7, speed_range=(0.8, 1.3), model_capacity=0.5, material="onset")
    d = json.loads(json.dumps(cfg.to_dict()))
    assert d["speed_range"] == [0.8, 1.3]
    assert TrainingConfig.from_dict(d) == cfg


def test_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(ConfigError) as info:
        TrainingConfig.from_dict({"epochs": 3, "epohcs": 4})
    assert info.value.field == "epohcs"
    assert "unknown field" in info.value.rule


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(5 * 4.0, "tiny"), (59.0, "tiny"), (20 * 10.0, "small"), (40 * 30.0, "medium")],
)
def test_auto_preset_chosen_by_duration(seconds: float, expected: str) -> None:
    n = 5 if seconds < 60 else 20
    cfg = get_adaptive_config(report(n, seconds / n), device="cpu")
    assert cfg.preset == expected
    assert cfg.device == "cpu"
    for key, value in PRESETS[expected].items():
        if key not in ("batch_size", "epochs", "early_stopping_patience"):  # steps, see below
            assert getattr(cfg, key) == value, key


def test_presets_set_the_documented_fields() -> None:
    required = {"epochs", "batch_size", "learning_rate", "augmentation_expansion", "model_width"}
    required |= {"kl_schedule", "kl_warmup_epochs", "checkpoint_every", "preview_every"}
    for name, values in PRESETS.items():
        assert required <= set(values), name
        TrainingConfig(**values, preset=name)  # every preset is valid on its own
    assert PRESETS["tiny"]["model_width"] < PRESETS["medium"]["model_width"]


def test_latent_layout_reaches_the_model() -> None:
    # presets: 60 floats = 12 steps x 4 + 11 global + 1 gain; auto frames pick a divisor <= 12
    assert TrainingConfig(**PRESETS["tiny"]).model_kwargs()["latent_frames"] == 12
    assert TrainingConfig(latent_dim=64).resolved_latent_frames == 8
    assert TrainingConfig(latent_dim=7).resolved_latent_frames == 7
    assert TrainingConfig(latent_dim=64, latent_frames=4).resolved_latent_frames == 4
    assert TrainingConfig(latent_layout="flat").model_kwargs()["latent_frames"] is None
    assert (
        "temporal latent 60 floats (12 steps x 4 + 11 for the whole chunk + 1 for its peak level)"
        in TrainingConfig(**PRESETS["small"]).describe()
    )
    assert "flat latent 64 floats" in TrainingConfig(latent_layout="flat").describe()


def test_a_whole_config_saved_before_the_temporal_layout_reads_as_flat() -> None:
    old = TrainingConfig(latent_layout="flat").to_dict()
    del old["latent_layout"], old["latent_frames"]
    assert TrainingConfig.from_dict(old).latent_layout == "flat"
    # nor had it the fields added since
    for name in ("gain_tilt", "gain_input", "velocity_db", "early_stopping_min_steps",
                 "val_smoothing_steps", "linear_path", "code_mixup"):  # fmt: skip
        del old[name]
    assert TrainingConfig.from_dict(old).latent_layout == "flat"
    assert TrainingConfig.from_dict({"epochs": 3}).latent_layout == "temporal"  # a partial dict
    # the flat layout ignores latent_frames, so its divisibility rule does not apply
    assert TrainingConfig(latent_layout="flat", latent_dim=64, latent_frames=12).latent_dim == 64
    # auto never picks more latent steps than the chunk has frames (0.05 s: 5 frames)
    assert TrainingConfig(chunk_seconds=0.05, latent_dim=60).resolved_latent_frames == 5
    # ...and of the divisors it takes the one that pads the chunk least: 1.5 s is 141 frames,
    # 10 steps pad it to 160 where 12 would pad it to 192
    assert TrainingConfig(chunk_seconds=1.5, latent_dim=60).resolved_latent_frames == 10


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, (60, 12, 11, True)),
        ({"latent_dim": "32"}, (32, 12, 7, True)),  # 12 steps x 2 + 7 + gain
        ({"latent_dim": "8"}, (8, 7, 0, True)),  # too small for a global code
        ({"latent_layout": "flat"}, (60, None, 0, False)),  # the flat layout has neither part
        ({"chunk_gain": "false"}, (60, 7, 11, False)),  # the user's choice wins: 49 = 7 x 7
    ],
)
def test_presets_fit_the_global_code_and_gain_to_the_latent(
    overrides: dict[str, str], expected: tuple[int, int | None, int, bool]
) -> None:
    cfg = get_adaptive_config(report(30, 0.5, "onset"), device="cpu", **overrides)
    got = (cfg.latent_dim, cfg.resolved_latent_frames, cfg.latent_global, cfg.chunk_gain)
    assert got == expected


def test_the_gains_options_can_be_set_on_a_preset() -> None:
    # the preset has the gain, so its options need no chunk_gain from the user...
    for name in ("gain_tilt", "gain_input"):
        cfg = get_adaptive_config(report(30, 0.5, "onset"), device="cpu", **{name: "true"})
        assert getattr(cfg, name) is True
        assert cfg.model_kwargs()[name] is True
        # ...but without the gain they are refused by name
        with pytest.raises(ConfigError, match=f"{name}=True: needs chunk_gain=true"):
            get_adaptive_config(report(30, 0.5), device="cpu", chunk_gain="false", **{name: "true"})
    # a preset's own gain options go with its gain (the flat layout, or the user's choice)
    for off in ({"latent_layout": "flat"}, {"chunk_gain": "false"}):
        cfg = get_adaptive_config(report(30, 0.5, "onset"), device="cpu", **off)
        assert (cfg.chunk_gain, cfg.gain_tilt, cfg.gain_input) == (False, False, False)


def test_flat_layout_with_a_preset_gets_the_flat_width() -> None:
    for preset, width in (("tiny", 16), ("small", 32), ("medium", 48)):
        cfg = get_adaptive_config(report(5, 2.0), device="cpu", preset=preset, latent_layout="flat")
        assert cfg.model_width == width
    chosen = get_adaptive_config(report(5, 2.0), device="cpu", latent_layout="flat", model_width=8)
    assert chosen.model_width == 8  # the user's width wins


def test_batch_size_capped_by_chunk_count() -> None:
    cfg = get_adaptive_config(report(3, 1.0), device="cpu", preset="small")
    # 3 one-second chunks, 20% held out -> at most 2 training chunks
    assert cfg.batch_size == 2
    assert estimate_chunks(report(3, 1.0), 1.0, None) == 3
    assert estimate_chunks(report(2, 0.1), 1.0, None) == 2  # short files are padded, not dropped
    assert estimate_chunks(report(1, 3.0), 1.0, 0.5) == 5


def test_small_data_is_scheduled_in_optimizer_steps() -> None:
    # 24 short one-shots: 24 chunks, 19 for training, x2 augmented, batch 8 -> 5 steps an epoch
    few = get_adaptive_config(report(24, 0.3), device="cpu")
    assert few.preset == "tiny"
    assert few.epochs == MIN_STEPS["tiny"] // 5  # 400 epochs: 2,000 steps, not 200 epochs
    assert few.early_stopping_patience == PATIENCE_STEPS // 5
    assert few.early_stopping_min_steps == MIN_STEPS["tiny"]
    assert few.val_smoothing_steps == SMOOTHING_STEPS
    # 50 one-second files: 10 steps an epoch, the preset's 200 epochs already hold 2,000
    many = get_adaptive_config(report(50, 1.0), device="cpu")
    assert (many.preset, many.epochs) == ("tiny", PRESETS["tiny"]["epochs"])
    assert many.early_stopping_patience == PATIENCE_STEPS // 10
    # the user's choices win
    mine = get_adaptive_config(report(24, 0.3), device="cpu", epochs=50, val_smoothing_steps=0)
    assert (mine.epochs, mine.val_smoothing_steps) == (50, 0)
    assert "not before step 2000" in few.describe()


def test_overrides_win_including_cli_strings() -> None:
    overrides = parse_assignments(["epochs=3", "learning_rate=5e-4", "speed_range=0.8,1.2"])
    cfg = get_adaptive_config(report(30, 10.0), device="cpu", batch_size=64, **overrides)
    assert (cfg.epochs, cfg.learning_rate, cfg.batch_size) == (3, 5e-4, 64)
    assert cfg.speed_range == (0.8, 1.2)
    assert cfg.preset == "small"
    again = apply_overrides(cfg, {"augmentation": "false", "model_capacity": "none"})
    assert again.augmentation is False
    assert again.model_capacity is None


def test_override_errors_name_the_field() -> None:
    with pytest.raises(ConfigError) as info:
        get_adaptive_config(report(5, 2.0), device="cpu", epochs="zero")
    assert info.value.field == "epochs"
    with pytest.raises(ConfigError) as info:
        get_adaptive_config(report(5, 2.0), device="cpu", no_such_field=1)
    assert info.value.field == "no_such_field"
    with pytest.raises(ConfigError) as info:
        get_adaptive_config(report(5, 2.0), device="cpu", preset="huge")
    assert info.value.field == "preset"


@pytest.mark.parametrize(
    ("material", "shift"), [("onset", 0.0), ("continuous", 0.05), ("mixed", 0.0), (None, 0.0)]
)
def test_material_sets_time_shift(material: str | None, shift: float) -> None:
    cfg = get_adaptive_config(report(5, 3.0, material), device="cpu")
    assert cfg.time_shift_max_s == pytest.approx(shift)
    assert cfg.material == (material or "auto")
    # an explicit override still wins over the material rule
    cfg = get_adaptive_config(report(5, 3.0, material), device="cpu", time_shift_max_s="0.1")
    assert cfg.time_shift_max_s == pytest.approx(0.1)


def test_adaptive_config_checks_the_device() -> None:
    # resolve_device's rules are tested in tests/engine/test_devices.py
    with pytest.raises(ConfigError, match="must be auto"):
        get_adaptive_config(report(5, 2.0), device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            get_adaptive_config(report(5, 2.0), device="cuda")


def test_device_aware_batch() -> None:
    cfg = get_adaptive_config(report(40, 30.0), device="auto")
    assert cfg.device == resolve_device("auto")
    expected = PRESETS["medium"]["batch_size"] * (2 if cfg.device.startswith("cuda") else 1)
    assert cfg.batch_size == expected


def test_describe_mentions_the_choices() -> None:
    text = get_adaptive_config(report(5, 3.0, "continuous"), device="cpu").describe()
    assert "preset tiny on cpu" in text
    assert "continuous" in text
    assert "time shift 0.05 s" in text


def test_linear_path_and_code_mixup_reach_the_model_and_break_their_rules_clearly() -> None:
    assert TrainingConfig(linear_path=True).model_kwargs()["linear_path"] is True
    assert TrainingConfig().model_kwargs()["linear_path"] is False
    with pytest.raises(ConfigError, match="linear_path.*latent_layout=flat"):
        TrainingConfig(latent_layout="flat", linear_path=True)
    with pytest.raises(ConfigError, match="code_mixup.*>= 0"):
        TrainingConfig(code_mixup=-1.0)
