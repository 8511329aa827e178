"""`smalltrain demo` (what `make demo` runs) end to end, in a real child process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf


@pytest.mark.slow
def test_demo_trains_registers_generates_and_scores(tmp_path: Path) -> None:
    home, out = tmp_path / "home", tmp_path / "demo-output"
    env = {**os.environ, "SMALLTRAIN_HOME": str(home)}
    proc = subprocess.run(
        [sys.executable, "-m", "smalltrain.cli.main", "demo", "--out", str(out), "--epochs", "2"],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = " ".join(proc.stdout.split())  # rich wraps long lines
    assert "1. wrote 40 synthetic drum hits" in text
    assert "(tiny preset, 2 epochs)" in text
    assert "completed in" in text
    assert "4. on 10 held-out hits: model SC " in text
    assert ", PCA-" in text
    assert len(list((out / "sounds").glob("hit_*.wav"))) == 40
    assert len(list((out / "held-out").glob("hit_*.wav"))) == 10
    for folder, count in (("generated", 4), ("interpolated", 5)):
        waves = sorted((out / folder).glob("*.wav"))
        assert len(waves) == count, folder
        assert all(sf.info(w).samplerate == 48000 for w in waves)
    models = list((home / "models").glob("*/models/demo-*/weights/best.pt"))
    assert len(models) == 1, list(home.rglob("*"))
    assert (home / "smalltrain.db").is_file()
