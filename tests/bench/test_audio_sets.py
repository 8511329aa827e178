"""The benchmark's real sound sets (``bench/audio_sets.py``) hold the material they name.

Skipped with one clear reason when ``../shared/data`` is absent.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

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
