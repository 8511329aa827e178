"""Audio models in a real browser (Debian's chromium through Playwright, offline), one server
for both tabs:

- Explore: the map appears, hovering a point names it, a click plays its sound, a slider move
  changes the output audio, the pad renders a point;
- Models → Export: a registered audio model is exported to ONNX with the Export button, the
  download link appears and the file it hands out (through the page, with its cookie) is a zip
  holding a loadable ``decoder.onnx`` and ``example.py``; a model whose weights changed since
  registration gets a readable error, not a traceback.

Screenshots go to ``test-artifacts/ui/explore-*.png`` and ``models-export-*.png``."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from smalltrain import paths
from smalltrain.service.datasets import register_dataset
from smalltrain.store import DatasetStore, JobStore, ModelEntry, ModelStore
from tests.support.audio import TrainedAudio
from tests.ui.browser import (
    Env,
    browser_env,
    choose,
    module_root,
    open_app,
    tab,
    wait_text,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory,
    artifacts: Path,
    explore_model: Path,
    trained_audio: TrainedAudio,
) -> Iterator[Env]:
    root = module_root(tmp_path_factory, "ui-audio-models")
    home = root / "home"
    home.mkdir()
    with JobStore(paths.db_path(home)) as jobs:
        register_dataset(DatasetStore(jobs), "tones", trained_audio.data, "audio")
    models = ModelStore(paths.models_dir(home))
    models.save(ModelEntry(
        dataset="shots", name="explorer", weights=explore_model, task="audio", config={},
        metrics={}, base_model=None, epochs_completed=12, headline=("best_val_loss", 1.0),
        dataset_snapshot="24 files", dataset_fingerprint="x",
    ))  # fmt: skip
    for name in ("tiny", "tampered"):
        models.save(ModelEntry(
            dataset="tones", name=name, weights=trained_audio.model, task="audio", config={},
            metrics={}, base_model=None, epochs_completed=2, headline=("best_val_sc", 0.5),
            dataset_snapshot="6 files", dataset_fingerprint="",
        ))  # fmt: skip
    # the registry's copy changes after registration: export must refuse it, readably
    with open(models.get("tones", "tampered").weights, "ab") as f:
        f.write(b"\0")
    with browser_env(home, root, artifacts, "server-audio-models.log") as env:
        yield env


def _wav(env: Env, page: object, src: str | None) -> bytes:
    assert src, "the player has no src"
    body = page.request.get(env.server.url.rstrip("/") + src).body()  # type: ignore[attr-defined]
    assert body[:4] == b"RIFF"
    return bytes(body)


def _move(page: object, elem_id: str, fraction: float) -> None:
    """Click a slider's track at ``fraction`` of its width, as a user drags it (release)."""
    track = page.locator(f"#{elem_id} input[type=range]")  # type: ignore[attr-defined]
    box = track.bounding_box()
    track.click(position={"x": box["width"] * fraction, "y": box["height"] / 2})


def test_explore_tab_map_click_slider_pad(env: Env) -> None:
    page = env.page()
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    open_app(page, env.server.page_url)
    tab(page, "Explore")
    try:
        page.wait_for_function(
            "document.querySelector('#explore-model input')?.value.includes('/')", timeout=30_000
        )
    except Exception:
        env.shot(page, "FAILED-explore")
        raise AssertionError(console) from None
    if "explorer" not in page.locator("#explore-model input").first.input_value():
        choose(page, "explore-model", "shots/explorer")
    page.locator("#explore-load").click()
    page.wait_for_selector('#explore-map .st-map[data-points="24"]', timeout=120_000)
    wait_text(page, "explore-sliders", "brighter")
    assert "Side effects" in page.locator("#explore-sliders").inner_text()

    # hover names a point; a click plays its sound (rendered by the server)
    dot = page.locator("#explore-map circle.st-dot").first
    name = dot.get_attribute("data-name")
    assert name
    assert name in (dot.locator("title").text_content() or "")
    dot.hover()
    dot.click()
    wait_text(page, "explore-map", name)
    page.wait_for_function(
        "() => { const a = document.querySelector('#explore-map audio.st-map-player');"
        " return a && a.src && !a.paused && a.readyState >= 2; }",
        timeout=60_000,
    )
    player = page.locator("#explore-map audio.st-map-player")
    _wav(env, page, player.get_attribute("src"))
    env.shot(page, "explore-01-map")

    # a slider move renders at once; another move changes the audio
    _move(page, "explore-brighter", 0.85)
    page.wait_for_selector("#explore-made audio", timeout=120_000)
    first_src = page.locator("#explore-made audio").first.get_attribute("src")
    first = _wav(env, page, first_src)
    wait_text(page, "explore-made", "brighter")
    _move(page, "explore-brighter", 0.15)
    page.wait_for_function(
        "(old) => { const a = document.querySelector('#explore-made audio');"
        " return a && a.getAttribute('src') !== old; }",
        arg=first_src,
        timeout=120_000,
    )
    second = _wav(env, page, page.locator("#explore-made audio").first.get_attribute("src"))
    assert second != first, "moving the slider did not change the rendered sound"
    env.shot(page, "explore-02-slider")

    # the pad: a point between the four corners
    _move(page, "explore-u", 0.3)
    page.wait_for_selector("#explore-pad audio", timeout=120_000)
    wait_text(page, "explore-pad", "pad at")
    env.shot(page, "explore-03-pad")

    page.context.close()
    assert env.outside() == [], f"requests left loopback: {env.outside()}"
    maps = Path(f"/proc/{env.server.proc.pid}/maps").read_text()
    assert "libtorch" not in maps, "the server process loaded torch"


def _pick_model(page: object, name: str) -> None:
    choose(page, "models-model", name)  # type: ignore[arg-type]
    page.wait_for_function(  # type: ignore[attr-defined]
        "(n) => document.querySelector('#models-model input')?.value === n"
        " && document.querySelector('#models-export-format input')?.value === 'onnx'",
        arg=name,
        timeout=30_000,
    )


def test_models_tab_exports_onnx_and_downloads_it(env: Env, tmp_path: Path) -> None:
    pytest.importorskip("onnx", reason="the [export] extra is not installed")
    pytest.importorskip("onnxruntime", reason="the [export] extra is not installed")
    page = env.page()
    open_app(page, env.server.page_url)
    tab(page, "Models")
    if page.locator("#models-dataset input").first.input_value() != "tones":
        choose(page, "models-dataset", "tones")
    page.wait_for_selector('#models-table tr[data-model="tampered"]')
    _pick_model(page, "tiny")
    wait_text(page, "models-export-links", "No export yet")
    env.shot(page, "models-export-01-chosen")

    page.locator("#models-export").click()
    # the message first: on a timeout it says what the page shows instead (once, with the
    # suite's other worker busy, no link came within 120 s and the cause was not on record)
    wait_text(page, "models-message", "Exported tones/tiny to onnx", timeout=180_000)
    link = page.locator('#models-export-links a[href$="/exports/onnx"]')
    link.wait_for()
    assert "onnx (.zip) · " in link.inner_text()
    for where in (link.inner_text(), page.locator("#models-message").inner_text()):
        assert "KiB" in where, where  # a ~100 KB export is not "0.0 MiB"
    env.shot(page, "models-export-02-done")

    # the link downloads through the page (its session cookie), as a user's click does
    with page.expect_download() as made:
        link.click()
    saved = tmp_path / made.value.suggested_filename
    made.value.save_as(saved)
    body = saved.read_bytes()
    assert body[:4] == b"PK\x03\x04", body[:16]
    archive = zipfile.ZipFile(io.BytesIO(body))
    assert {"onnx/decoder.onnx", "onnx/example.py"} <= set(archive.namelist())
    import onnx

    decoder = onnx.load_from_string(archive.read("onnx/decoder.onnx"))
    onnx.checker.check_model(decoder)
    assert decoder.graph.input
    assert decoder.graph.output

    # weights changed since registration: a readable refusal, no traceback, links unchanged
    _pick_model(page, "tampered")
    wait_text(page, "models-export-links", "No export yet")
    page.locator("#models-export").click()
    wait_text(page, "models-message", "changed since it was registered", timeout=120_000)
    shown = page.locator("#models-message").inner_text()
    for raw in ("Traceback", "NoneType", "CheckpointError", 'File "'):
        assert raw not in shown, shown
    assert "train or register the model again" in shown
    assert page.locator("#models-export-links a").count() == 0
    env.shot(page, "models-export-03-error")

    page.context.close()
    assert env.outside() == [], f"requests left loopback: {env.outside()}"
