"""``GET /api/models/{dataset}/{name}/results/{file}``: the client names a model and a file,
never a path. Only the files the model's ``results/results.json`` lists are served, from that
folder, behind the guards (token, Host, Origin)."""

from __future__ import annotations

import json
from pathlib import Path

from smalltrain import paths
from smalltrain.store import ModelEntry, ModelStore
from tests.support.api import EVIL, Served, assert_only_the_page_reads

ROUTE = "/api/models/cells/m1/results"


def _model_with_results(home: Path, root: Path) -> Path:
    """A registered detection model whose results folder holds listed and unlisted files."""
    results = root / "results"
    (results / "worst").mkdir(parents=True)
    (results / "confusion_matrix.png").write_bytes(b"PNG-matrix")
    (results / "worst" / "01-a.png").write_bytes(b"PNG-worst")
    (results / "unlisted.png").write_bytes(b"PNG-unlisted")
    listing = {
        "files": {"confusion_matrix": "confusion_matrix.png", "up": "../metrics.json"},
        "worst": [{"image": "a.png", "file": "worst/01-a.png"}, {"file": "link.png"}],
    }
    (results / "results.json").write_text(json.dumps(listing))
    weights = root / "best.pt"
    weights.write_bytes(b"not really weights")
    info = ModelStore(paths.models_dir(home)).save(ModelEntry(
        dataset="cells", name="m1", weights=weights, task="detect", config={}, metrics={},
        base_model=None, epochs_completed=1, headline=("best_map50_95", 0.5),
        extra_files={"results": results},
    ))  # fmt: skip
    (info.path / "results" / "link.png").symlink_to(info.path / "metrics.json")
    return info.path


def test_only_listed_results_files_are_served(api: Served, tmp_path: Path) -> None:
    _model_with_results(api.home, tmp_path)
    served = api.client.get(f"{ROUTE}/confusion_matrix.png")
    assert served.status_code == 200
    assert served.content == b"PNG-matrix"
    assert api.client.get(f"{ROUTE}/worst/01-a.png?v=2026").content == b"PNG-worst"
    for name in ("unlisted.png", "..%2Fmetrics.json", "../metrics.json", "link.png",
                 "results.json", "%2Fetc%2Fpasswd", "worst/../unlisted.png"):  # fmt: skip
        answer = api.client.get(f"{ROUTE}/{name}")
        assert answer.status_code == 404, name
        assert b"PNG-unlisted" not in answer.content
        assert b"headline" not in answer.content
    assert api.client.get("/api/models/cells/nope/results/confusion_matrix.png").status_code == 404
    listing = api.client.get(ROUTE)  # results.json itself, as JSON, from its own route
    assert listing.json()["worst"][0]["file"] == "worst/01-a.png"
    assert api.client.get(ROUTE, headers={"Origin": EVIL}).status_code == 403
    # the guards: the token, and no other origin (nor a cross-site fetch) may read them
    url = f"{ROUTE}/confusion_matrix.png"
    assert_only_the_page_reads(api, url, b"PNG")
