"""The benchmark's real sound sets (``bench/audio_sets.py``) hold the material they name.

Skipped with one clear reason when ``../shared/data`` is absent.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.data import require

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _audio_sets() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audio_sets", BENCH / "audio_sets.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("audio_sets", module)
    spec.loader.exec_module(module)
    return module


def test_kit_is_the_bass_drums_and_snares_in_layers_split_by_source(tmp_path: Path) -> None:
    sets = _audio_sets()
    require(sets.SONIC_PI)
    sources = {p.stem for p in sets.SONIC_PI.glob("*.flac") if p.name.startswith(("bd_", "sn_"))}
    root = sets.build_set("kit", tmp_path)
    sides = {sub: {p.stem for p in (root / sub).glob("*.wav")} for sub in ("train", "held")}
    layers = [name for name, _, _ in sets.VELOCITY_LAYERS]
    assert sides["train"] | sides["held"] == {f"{s}_{layer}" for s in sources for layer in layers}
    train_sources = {stem.rsplit("_", 1)[0] for stem in sides["train"]}
    held_sources = {stem.rsplit("_", 1)[0] for stem in sides["held"]}
    assert not train_sources & held_sources  # the layers of one hit stay on one side
    assert len(held_sources) == round(len(sources) / 4)


@pytest.mark.parametrize("kit_name", ["pearl", "millo", "colombo", "gimme", "afrique", "empire",
                                      "hardelectro"])  # fmt: skip
def test_kit_splits_by_file_and_by_instrument(kit_name: str) -> None:
    """Names only (no audio is decoded): both splits of a real kit cover its files once, are the
    same on every call, hold out about a quarter, and by instrument keep each instrument on one
    side while by file puts the layers of some instruments on both."""
    sets = _audio_sets()
    kit = sets.KITS[kit_name]
    require(sets.DRUMKITS / kit.folder)
    files = sorted(
        p.name for p in (sets.DRUMKITS / kit.folder).iterdir() if p.suffix in {".wav", ".flac"}
    )
    groups = sets.kit_groups(kit)
    assert sorted(f for members in groups.values() for f in members) == files
    assert len(groups) > 1

    def instruments(names: list[str]) -> set[str]:
        return {sets.instrument_of(kit, n) for n in names}

    by_file = sets.kit_split(f"{kit_name}-file")
    by_instrument = sets.kit_split(f"{kit_name}-instrument")
    assert sets.kit_split(f"{kit_name}-file") == by_file  # deterministic
    assert sets.kit_split(f"{kit_name}-instrument") == by_instrument
    for train, held in (by_file, by_instrument):
        assert sorted(train + held) == files  # every file, once
        assert not set(train) & set(held)
        assert train
        assert held
    train, held = by_instrument
    assert not instruments(train) & instruments(held)
    assert len(instruments(held)) == round(len(groups) / 4)
    train, held = by_file
    assert len(held) == round(len(files) / 4)
    if max(len(members) for members in groups.values()) >= 4:  # a kit with layers
        assert instruments(train) & instruments(held)


def test_kit_instrument_rules_on_known_names() -> None:
    """The naming rules give the instruments a reader expects (no data needed)."""
    sets = _audio_sets()
    cases = {
        "pearl": {"PearlTom1-Softest.wav": "pearltom1", "PearlSnareRimshot-Med.wav":
                  "pearlsnarerimshot", "HandClap.wav": "handclap"},
        "millo": {"bd_05.flac": "bd", "hhopen_00.flac": "hhopen"},
        "colombo": {
            "bassdrum-4mics-br-stereo-soft2.flac": "bassdrum",
            "snare-opaque-2mics_normal-shot1.flac": "snare opaque",
            "snare-opaque-normal-mic-normal_shot3.flac": "snare opaque",
            "snare-opaque-normal-mic-rimshot6.flac": "snare opaque rimshot",
            "crash16i__ride_cup4.flac": "crash16i ride cup",
            "crash20i__ride-cup1.flac": "crash20i ride cup",
        },
        "afrique": {"Djembe3 Slap.wav": "djembe3", "Dununba1 Bell Mute.wav": "dununba1"},
        "empire": {"EE_Kick_Hard_2.flac": "kick hard", "EE_Clap_Hard.flac": "clap hard"},
        "hardelectro": {"HardHse_K_03_B.flac": "hardhse k", "yFX_8.flac": "yfx"},
    }  # fmt: skip
    for kit_name, names in cases.items():
        kit = sets.KITS[kit_name]
        assert {n: sets.instrument_of(kit, n) for n in names} == names, kit_name


def test_kit_set_links_its_split(tmp_path: Path) -> None:
    sets = _audio_sets()
    require(sets.DRUMKITS / sets.KITS["hardelectro"].folder)
    root = sets.build_set("hardelectro-instrument", tmp_path)
    train, held = sets.kit_split("hardelectro-instrument")
    assert sorted(p.name for p in (root / "train").iterdir()) == train
    assert sorted(p.name for p in (root / "held").iterdir()) == held
    assert all(p.resolve().is_file() for p in (root / "held").iterdir())
