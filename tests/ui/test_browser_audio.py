"""The audio workbench through the page (issue 23, §3): Debian's chromium driven by Playwright,
offline, its fake microphone fed a real WAV; screenshots ``audio-workbench-*.png`` in
``test-artifacts/ui/``.

- the Job page's previews say which file "recon" reconstructs, with its original beside it;
- Generate shows each sound's full file name, a player and its spectrogram, and "Download all"
  gives a zip of the sounds (an output file, served by the same rules as every other);
- Reconstruct takes a microphone recording (44.1 kHz stereo here) through the same call as an
  upload; a silent sound is refused in words, never with a trace.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ui.browser import (
    AUDIO_SETTINGS,
    Env,
    browser_env,
    open_app,
    read_events,
    skip_reason,
    tab,
    wait_text,
)

pytestmark = pytest.mark.slow

#: Each player's duration once its metadata loaded (fails on an unplayable file).
DURATIONS = """(sel) => Promise.all([...document.querySelectorAll(sel)].map(a =>
    new Promise((ok, fail) => {
        a.preload = 'metadata';
        a.addEventListener('loadedmetadata', () => ok(a.duration));
        a.addEventListener('error', () => fail(new Error('audio error ' + a.error?.code)));
        a.load();
    })))"""
LOADED = "(sel) => [...document.querySelectorAll(sel)].every(i => i.complete && i.naturalWidth > 0)"


def _mic_wav(path: Path) -> Path:
    """What the fake microphone hears, looped: a decaying 330 Hz tone, 44.1 kHz stereo."""
    import numpy as np
    import soundfile as sf

    sr = 44100
    t = np.arange(sr) / sr
    tone = 0.4 * np.sin(2 * np.pi * 330 * t) * np.exp(-3 * t)
    sf.write(path, np.stack([tone, 0.6 * tone], 1), sr, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Iterator[Env]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("ui-audio")
    mic = _mic_wav(root / "mic.wav")
    args = [f"--use-file-for-fake-audio-capture={mic}"]
    with browser_env(root / "home", root, artifacts, "server-audio.log", args) as env:
        yield env


@pytest.fixture(scope="module")
def job_id(env: Env) -> str:
    """A tiny model trained through the API for one epoch, with a preview (a sample, a recon)."""
    from smalltrain.tasks.audio.synth import make_sound_folder

    folder = env.data / "one-shots"
    make_sound_folder(folder, n_files=4, seed=5)
    registered = env.server.api("POST", "api/datasets", {"name": "shots", "path": str(folder)})
    assert registered.status == 201, registered.body
    overrides = {**AUDIO_SETTINGS, "epochs": 1, "preview_every": 1, "preview_count": 1}
    spec = {"dataset": "shots", "preset": "tiny", "overrides": overrides, "model_name": "drums"}
    started = env.server.api("POST", "api/jobs", spec)
    assert started.status == 201, started.body
    job = started.json()["id"]
    events = read_events(f"{env.server.url}api/jobs/{job}/events", env.server.auth_headers())
    assert events[-1][2]["status"] == "COMPLETED", events[-1]
    return str(job)


@pytest.fixture(autouse=True)
def _shot_on_failure(request: pytest.FixtureRequest, env: Env) -> Iterator[None]:
    env.pages.clear()
    yield
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        for i, page in enumerate(env.pages):
            if not page.is_closed():
                page.screenshot(
                    path=str(env.artifacts / f"FAILED-{request.node.name}-{i}.png"), full_page=True
                )


def test_previews_name_the_reconstructed_file_beside_its_original(env: Env, job_id: str) -> None:
    page = env.page()
    page.goto(f"{env.server.page_url}&job={job_id}")
    page.wait_for_selector("#job-previews .st-recon")
    source = page.locator("#job-previews .st-recon").first.get_attribute("data-source")
    assert source
    assert (env.data / "one-shots" / source).is_file()
    pair = page.locator("#job-previews .st-recon").first.inner_text()
    assert f"A · original: {source}" in pair
    assert f"B · recon of {source}" in pair
    assert f"reconstruction of {source}" in page.locator("#job-previews").inner_text()
    # every player plays: samples, recon, its original, the inversion alone
    assert min(page.evaluate(DURATIONS, "#job-previews audio")) > 0.1
    page.locator("#job-previews").scroll_into_view_if_needed()
    env.shot(page, "audio-workbench-01-previews")
    page.context.close()


def test_generate_and_reconstruct_a_recording(env: Env, job_id: str) -> None:
    """Generate: full names, spectrograms, Download all. Reconstruct: a silent upload is
    refused in words; a microphone recording is reconstructed, A/B with spectrograms."""
    import numpy as np
    import soundfile as sf

    page = env.page()
    open_app(page, env.server.page_url)
    tab(page, "Use")
    page.wait_for_function("document.querySelector('#use-audio-model input').value")
    how_many = page.locator("#use-how-many input[type=number]")
    how_many.fill("2")
    how_many.press("Enter")
    page.locator("#use-generate").click()
    page.wait_for_selector("#use-generate-out .st-sound img", timeout=120_000)
    cards = page.locator("#use-generate-out .st-sound")
    assert cards.count() == 2
    names = [cards.nth(i).get_attribute("data-file") or "" for i in range(2)]
    assert names == ["shots-drums-seed0-000.wav", "shots-drums-seed0-001.wav"]
    for i, name in enumerate(names):  # the whole name is shown, the player keeps its width
        assert name in cards.nth(i).inner_text()
    widths = page.eval_on_selector_all(
        "#use-generate-out audio", "els => els.map(e => e.getBoundingClientRect().width)"
    )
    assert min(widths) >= 200, widths
    assert min(page.evaluate(DURATIONS, "#use-generate-out audio")) > 0.1
    page.wait_for_function(LOADED, arg="#use-generate-out .st-sound img")
    link = page.locator("#use-generate-out .st-download-all a")
    assert "Download all (2 sounds, zip)" in link.inner_text()
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == "shots-drums-seed0.zip"
    with zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes())) as z:
        assert sorted(z.namelist()) == names
        assert all(z.read(n)[:4] == b"RIFF" for n in names)
    env.shot(page, "audio-workbench-02-generate")

    page.get_by_role("tab", name="Reconstruct", exact=True).click()
    # a silent file, uploaded: a sentence saying why and what to do
    silent = env.data / "silence.wav"
    sf.write(silent, np.zeros(48000), 48000)
    recorder = page.locator("#use-reconstruct-input")
    recorder.locator("input[type=file]").set_input_files(str(silent))
    recorder.locator("a[data-testid=download-link]").wait_for()
    page.locator("#use-reconstruct").click()
    wait_text(page, "use-reconstruct-out", "silence.wav is silent", timeout=120_000)
    assert "Traceback" not in page.locator("#use-reconstruct-out").inner_text()
    env.shot(page, "audio-workbench-03-silent-upload")
    # record from the (fake) microphone: about a second, then stop
    recorder.get_by_role("button", name="Clear").click()
    recorder.get_by_role("button", name="Record audio").click()
    recorder.locator("button.record-button").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#use-reconstruct-input time')]"
        ".some(t => /^0:0[1-9]/.test(t.textContent))"
    )
    env.shot(page, "audio-workbench-04-recording")
    recorder.locator("button.stop-button").click()
    recorder.locator("a[data-testid=download-link]").wait_for()
    page.locator("#use-reconstruct").click()
    page.wait_for_selector("#use-reconstruct-out .st-images img", timeout=120_000)
    text = page.locator("#use-reconstruct-out").inner_text()
    assert "A · original: original.wav" in text, text
    assert "B · model output: audio-reconstructed.wav" in text, text
    durations = page.evaluate(DURATIONS, "#use-reconstruct-out audio")
    assert min(durations) > 0.5, durations
    assert abs(durations[0] - durations[1]) < 0.05, durations
    page.wait_for_function(LOADED, arg="#use-reconstruct-out img")
    env.shot(page, "audio-workbench-05-reconstruct-recording")
    page.context.close()
    assert env.outside() == [], f"requests left loopback: {env.outside()}"
