"""``smalltrain explore`` and ``generate --like/--corner`` through the real CLI, on the
exploration tests' shared model (``explore_model`` in ``tests/conftest.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import soundfile as sf
from typer.testing import CliRunner

from smalltrain.cli.main import app


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result.stdout + result.stderr if code == 0 else result.stderr


def shots(model: Path) -> list[Path]:
    """The model's training folder's files (``run/export/best.pt`` -> ``shots/``)."""
    return sorted((model.parents[2] / "shots").rglob("*.wav"))


def test_explore_prints_sliders_and_writes_the_map(explore_model: Path, tmp_path: Path) -> None:
    out = run("explore", str(explore_model), "--out", str(tmp_path / "map"))
    assert "map: 24 files (18 training, 6 held-out)" in out
    for slider in ("brighter", "longer", "noisier", "louder"):
        assert slider in out
    assert "Side effects" in out
    data = json.loads((tmp_path / "map" / "map.json").read_text())
    assert len(data["points"]) == 24
    assert (tmp_path / "map" / "map.png").read_bytes()[:4] == b"\x89PNG"
    doc = json.loads(run("explore", str(explore_model), "--json").split("\n\n")[0])
    assert [s["name"] for s in doc["sliders"]] == ["brighter", "longer", "noisier", "louder"]
    assert all(s["moves"] for s in doc["sliders"])


def test_generate_like_a_file_with_slides_and_targets(explore_model: Path, tmp_path: Path) -> None:
    files = shots(explore_model)
    out = run("generate", str(explore_model), "--like", str(files[0]), "--slide", "brighter=+1.5",
              "--set-descriptor", "decay=0.7", "--out", str(tmp_path / "a"))  # fmt: skip
    assert "brighter +1.5" in out
    assert "decay x0.7" in out
    assert sf.info(tmp_path / "a" / "explored_000.wav").frames > 0
    corners = [a for f in files[:4] for a in ("--corner", str(f))]
    doc = json.loads(run("generate", str(explore_model), *corners, "--at", "0.3,0.7", "--json",
                         "--out", str(tmp_path / "b")))  # fmt: skip
    assert Path(doc["file"]).is_file()
    assert doc["steps"][0].startswith("pad at 0.3,0.7")


def test_bad_exploration_arguments_say_what_to_write(explore_model: Path, tmp_path: Path) -> None:
    file = str(shots(explore_model)[0])
    model = str(explore_model)
    assert "no such slider" in run("generate", model, "--like", file, "--slide", "wetter=1", code=1)
    assert "brighter=+1.5" in run("generate", model, "--like", file, "--slide", "brighter", code=1)
    err = run("generate", model, "--like", file, "--set-descriptor", "decay=0", code=1)
    assert "factor > 0" in err
    assert "4 corners" in run("generate", model, "--corner", file, code=1)
    err = run("generate", model, *["--corner", file] * 4, "--at", "0.3", code=1)
    assert "U,V" in err
