"""The Explore tab in a real browser (Debian's chromium through Playwright, offline): the map
appears, hovering a point names it, a click plays its sound, a slider move changes the output
audio, the pad renders a point; screenshots go to ``test-artifacts/ui/``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from smalltrain.paths import models_dir
from smalltrain.store import ModelEntry, ModelStore
from tests.ui.browser import Env, browser_env, module_root, open_app, tab, wait_text

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory, artifacts: Path, explore_model: Path
) -> Iterator[Env]:
    root = module_root(tmp_path_factory, "ui-explore")
    ModelStore(models_dir(root / "home")).save(ModelEntry(
        dataset="shots", name="explorer", weights=explore_model, task="audio", config={},
        metrics={}, base_model=None, epochs_completed=12, headline=("best_val_loss", 1.0),
        dataset_snapshot="24 files", dataset_fingerprint="x",
    ))  # fmt: skip
    with browser_env(root / "home", root, artifacts, "server-explore.log") as env:
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
            "document.querySelector('#explore-model input')?.value.includes('explorer')",
            timeout=30_000,
        )
    except Exception:
        env.shot(page, "FAILED-explore")
        raise AssertionError(console) from None
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
