"""The web UI in a real browser: Debian's chromium driven by Playwright, offline.

Server and browser run in one network namespace that holds only loopback
(``smalltrain.ui.testing.offline``); every request the pages make is recorded, and any that
would leave loopback fails the test. The screens are saved as PNGs under
``test-artifacts/ui/`` (printed at the start).

End to end, audio: register a folder, import settings and change one, start, watch the progress
bar move, a curve grow and a preview player appear, Stop (CANCELLED with a checkpoint), reload
(same job, same state, same settings), Resume (COMPLETED), set the model active, generate a
sound and play it; the Job view plays augmented chunks beside their originals. Detection:
register a tiny dataset, train one epoch, see its first batches and its results in the Job view,
detect boxes on an uploaded image (the confidence slider filters them without running the model
again) and on a folder of images (counts per class per image and in total), see the results in
the Models tab (confusion matrix, worst images) and compute them again with Validate.
Then the HTTP API (start a job, follow its event stream to the end, resume the
stream), and Basic auth (page and API refuse a request without credentials).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.data import COCO8, PRETRAINED, register_pretrained_detector
from tests.support.uiserver import http, start_server
from tests.ui.browser import (
    AUDIO_SETTINGS,
    NOTICE_JS,
    Env,
    browser_env,
    choose,
    field_box,
    fill,
    loss_points,
    module_root,
    open_app,
    progress,
    read_events,
    shot_on_failure,
    start_job,
    tab,
    type_into,
    upload,
    wait_notice,
    wait_status,
    wait_text,
    watch_notice,
)

pytestmark = pytest.mark.slow
__all__ = ["shot_on_failure"]  # an autouse fixture: a screenshot of a failed test's pages


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Iterator[Env]:
    root = module_root(tmp_path_factory, "ui")
    with browser_env(root / "home", root, artifacts, "server.log") as env:
        yield env


def _move(page: object, elem_id: str, fraction: float) -> None:
    """Click a slider's track at ``fraction`` of its width, as a user drags it (release)."""
    track = page.locator(f"#{elem_id} input[type=range]")  # type: ignore[attr-defined]
    box = track.bounding_box()
    track.click(position={"x": max(1.0, box["width"] * fraction), "y": box["height"] / 2})


# --- the tests ----------------------------------------------------------------------------------


def test_audio_end_to_end(env: Env) -> None:
    from smalltrain.tasks.audio.data.synth import make_sound_folder

    sounds = env.data / "kicks"
    make_sound_folder(sounds, n_files=6, seed=1)
    settings_file = env.data / "tiny-settings.yaml"
    # two copies per chunk: the second is augmented, so the Job view has something to show
    settings_file.write_text(json.dumps({**AUDIO_SETTINGS, "augmentation_expansion": 2}))
    page = env.page()

    started = time.monotonic()
    open_app(page, env.server.page_url)
    env.timings["page load to interactive"] = time.monotonic() - started

    # Datasets: register a folder; the inspection report shows what is used
    tab(page, "Datasets")
    fill(page, "ds-name", "kicks")
    fill(page, "ds-path", str(sounds))
    page.locator("#ds-register").click()
    page.wait_for_selector("#ds-message .st-msg")
    assert "Registered 'kicks'" in page.locator("#ds-message").inner_text()
    page.wait_for_selector('#ds-report .st-report[data-kind="audio"]')
    assert "files used" in page.locator("#ds-report").inner_text()
    env.shot(page, "01-datasets")

    # Train: the new dataset is opened with its auto preset; import settings, change one field
    tab(page, "Train")
    page.wait_for_selector('#train-info [data-task="audio"]')
    assert "auto → tiny" in page.locator("#train-info").inner_text()
    with page.expect_file_chooser() as chooser:
        page.locator("#train-import").click()
    chooser.value.set_files(str(settings_file))
    wait_text(page, "train-status", "Imported tiny-settings.yaml")
    assert field_box(page, "Epochs").input_value() == "30"
    type_into(field_box(page, "Epochs"), "12")
    wait_text(page, "train-status", "→ 12; ")  # epochs: the preset's → 12
    # the engine's own message for a bad value, then back to a good one
    type_into(field_box(page, "Batch size"), "0")
    wait_text(page, "train-status", "batch_size=0: must be >= 1")
    type_into(field_box(page, "Batch size"), "4")
    page.wait_for_selector("#train-status .st-msg-ok")
    # Export: the file is the task's config, as `smalltrain train --config` reads it
    with page.expect_download() as download:
        page.locator("#train-export").click()
    exported = yaml.safe_load(Path(download.value.path()).read_text())
    from smalltrain.tasks.audio.config import TrainingConfig

    assert TrainingConfig.from_dict(exported).epochs == 12
    assert exported["model_width"] == AUDIO_SETTINGS["model_width"]
    env.shot(page, "02-train")

    # Start: the job appears at once, then moves
    clicked = time.monotonic()
    job_id = start_job(page)
    env.timings["Start to job shown"] = time.monotonic() - clicked
    page.wait_for_function(
        "Number(document.querySelector('#job-progress .st-progress').dataset.step) > 0",
        timeout=120_000,
    )
    env.timings["Start to first progress"] = time.monotonic() - clicked
    first = int(progress(page)["step"])
    page.wait_for_function(
        f"Number(document.querySelector('#job-progress .st-progress').dataset.step) > {first}"
    )
    points = loss_points(page)
    page.wait_for_function(
        "(n) => Number(document.querySelector('#job-charts polyline[data-label=\"train\"]')"
        "?.dataset.points || 0) > n",
        arg=points,
    )
    page.wait_for_selector("#job-previews audio")
    assert page.locator("#job-stop").is_enabled()
    assert not page.locator("#job-resume").is_enabled()
    env.shot(page, "03-job-training")
    # Stop at once (the tiny job ends within seconds): graceful, with a checkpoint
    page.locator("#job-stop").click()
    wait_status(page, "CANCELLED")
    job = env.server.api("GET", f"api/jobs/{job_id}").json()
    assert job["status"] == "CANCELLED"
    assert job["checkpoint_path"]
    assert Path(job["checkpoint_path"]).is_file()
    assert page.locator("#job-resume").is_enabled()
    assert not page.locator("#job-stop").is_enabled()
    env.shot(page, "04-job-cancelled")
    # What the model sees (kept after the stop): each augmented chunk's player beside its
    # original's, with the settings
    page.wait_for_selector('#job-seen .st-seen[data-task="audio"] audio')
    assert page.locator("#job-seen audio").count() == 6
    assert page.locator("#job-seen .st-seen-params").first.inner_text().startswith("speed ")
    src = page.locator("#job-seen audio").nth(1).get_attribute("src")
    assert src
    assert src.endswith("chunk_0_augmented.wav")
    assert page.request.get(env.server.url.rstrip("/") + src).body()[:4] == b"RIFF"
    # each player has read its sound's length (not drawn greyed out, waiting to be played)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#job-seen audio')]"
        ".every((a) => a.readyState >= 1 && a.duration > 0.1)"
    )
    page.locator("#job-seen").scroll_into_view_if_needed()
    env.shot(page, "03b-job-seen-audio")

    # Reload: the same job and state; the form keeps its settings
    page.reload()
    page.wait_for_selector(".st-title[data-loaded]")
    page.wait_for_selector(f'#job-header [data-job="{job_id}"]')
    wait_status(page, "CANCELLED")
    assert page.locator("#job-resume").is_enabled()
    tab(page, "Train")
    wait_text(page, "train-status", "→ 12; ")  # epochs: the preset's → 12
    assert field_box(page, "Epochs").input_value() == "12"
    assert field_box(page, "Batch size").input_value() == "4"

    # Resume: to the end
    tab(page, "Job")
    watch_notice(page)
    page.locator("#job-resume").click()
    wait_notice(page, f"Job {job_id} queued again")
    wait_status(page, "COMPLETED", timeout=240_000)
    assert not page.locator("#job-resume").is_enabled()
    # the notice was about the resume: once the job has ended, the header says how, alone
    page.wait_for_function(f"() => {NOTICE_JS} === ''")
    env.shot(page, "05-job-completed")

    # Models: registered; set it active
    tab(page, "Models")
    page.wait_for_selector("#models-table tr[data-model]")
    model = page.locator("#models-table tr[data-model]").first.get_attribute("data-model")
    page.locator("#models-activate").click()
    wait_text(page, "models-message", "is now the active model")
    assert "● active" in page.locator(f'#models-table tr[data-model="{model}"]').inner_text()
    # the comparison: best values in the legend and the table, with hyper-parameter columns
    page.wait_for_selector("#models-chart table.st-compare")
    compared = page.locator("#models-chart").inner_text()
    assert "best val/sc" in compared
    assert "learning_rate" in compared
    assert "best " in page.locator("#models-chart .st-legend").inner_text()
    env.shot(page, "06-models")

    # Jobs: the history shows it
    tab(page, "Jobs")
    page.wait_for_selector("#jobs-table table")
    assert "COMPLETED" in page.locator("#jobs-table").inner_text()
    env.shot(page, "07-jobs")

    # Use: generate sounds and play one
    tab(page, "Use")
    page.wait_for_function(
        f"document.querySelector('#use-audio-model input').value.includes('{model}')"
    )
    page.locator("#use-generate").click()
    page.wait_for_selector("#use-generate-out audio", timeout=120_000)
    duration = page.evaluate(
        """() => new Promise((ok, fail) => {
            const a = document.querySelector('#use-generate-out audio');
            a.preload = 'metadata';
            a.addEventListener('loadedmetadata', () => ok(a.duration));
            a.addEventListener('error', () => fail(new Error('audio error ' + a.error?.code)));
            a.load();
        })"""
    )
    assert duration > 0.1
    src = page.locator("#use-generate-out audio").first.get_attribute("src")
    assert src, "the generated sound's player has no src"
    wav = page.request.get(env.server.url.rstrip("/") + src)
    assert wav.status == 200
    assert wav.body()[:4] == b"RIFF"
    env.shot(page, "08-use-audio")

    page.context.close()
    assert env.outside() == [], f"requests left loopback: {env.outside()}"
    # nothing heavy ran in the server process: training, inspection and generation ran in
    # children, so torch was never loaded into it
    maps = Path(f"/proc/{env.server.proc.pid}/maps").read_text()
    assert "libtorch" not in maps, "the server process loaded torch"
    print(f"\nUI timings (shared 2-core machine): {env.timings}")


def test_detection_end_to_end(env: Env) -> None:
    from smalltrain.tasks.detect.synth import make_shapes_dataset

    data_yaml = make_shapes_dataset(env.data / "shapes")
    page = env.page()
    open_app(page, env.server.page_url)

    tab(page, "Datasets")
    fill(page, "ds-name", "shapes")
    fill(page, "ds-path", str(data_yaml))
    page.locator("#ds-register").click()
    wait_text(page, "ds-message", "Registered 'shapes'")
    page.wait_for_selector('#ds-report .st-report[data-kind="detect"]')
    assert "rect" in page.locator("#ds-report").inner_text()
    env.shot(page, "09-datasets-detection")

    # the dataset just registered is the one the Train tab opens (not the audio one from before)
    tab(page, "Train")
    page.wait_for_selector('#train-info [data-task="detect"]')
    assert page.locator("#train-dataset input").first.input_value().startswith("shapes · ")
    # the page takes no paths: a model .yaml Ultralytics ships, by name, builds from scratch
    type_into(field_box(page, "Base model (.pt, weights name or .yaml)"), "yolov8n.yaml")
    type_into(field_box(page, "Epochs"), "1")
    type_into(field_box(page, "Image size (px)"), "64")
    type_into(field_box(page, "Batch size"), "4")
    wait_text(page, "train-status", "epochs 300 → 1")
    env.shot(page, "10-train-detection")
    start_job(page)
    wait_status(page, "COMPLETED", timeout=240_000)
    page.wait_for_function(
        "document.querySelector('#job-charts polyline[data-label=\"box\"]') !== null"
    )
    env.shot(page, "11-job-detection")
    # the detection results, computed once at the end of training and kept with the model
    page.wait_for_selector('#job-results .st-results img[alt="confusion matrix"]')
    assert "Images it gets most wrong" in page.locator("#job-results").inner_text()
    page.locator("#job-results").scroll_into_view_if_needed()
    env.shot(page, "detection-results-job")
    # What the model sees: the first augmented batches with their boxes, as a gallery
    page.wait_for_selector('#job-seen .st-seen[data-task="detect"] img')
    assert "train_batch0.jpg" in (page.locator("#job-seen img").first.get_attribute("src") or "")
    assert "boxes" in page.locator("#job-seen figcaption").first.inner_text()
    page.locator("#job-seen").scroll_into_view_if_needed()
    env.shot(page, "11b-job-seen-detection")

    tab(page, "Use")
    page.get_by_role("tab", name="Detection", exact=True).click()
    page.wait_for_function(
        "document.querySelector('#use-detect-model input').value.includes('shapes/')"
    )
    image = sorted((data_yaml.parent / "images" / "val").glob("*.png"))[0]
    upload(page, "#use-images", image)
    page.locator("#use-detect").click()
    wait_text(page, "use-boxes", "1 image(s)", timeout=120_000)
    page.wait_for_selector("#use-gallery img")
    # uploads went to Gradio's temporary folder inside the home, not the system's
    assert list((env.server.home / "ui" / "tmp").rglob("img000.png"))
    env.shot(page, "12-use-detection")
    if PRETRAINED.exists():  # (a fresh clone has no shared data: the rest still runs)
        _slider_filters_without_running(env, page)
    # a folder of images: boxes per class per image and in total, at once
    folder = env.data / "to-detect"
    folder.mkdir()
    for png in sorted((data_yaml.parent / "images" / "val").glob("*.png"))[:3]:
        (folder / png.name).write_bytes(png.read_bytes())
    (folder / "notes.txt").write_text("not an image")
    page.locator("#use-images button[aria-label='Clear']").first.click()
    page.locator("#use-folder input[type=file]").set_input_files(str(folder))
    wait_text(page, "use-folder", "notes")  # the folder is listed, notes.txt and all
    page.locator("#use-detect").click()
    wait_text(page, "use-boxes", "3 image(s)", timeout=120_000)
    counts = page.locator("#use-boxes table.st-counts")
    assert counts.locator("th").first.inner_text() == "image"
    assert counts.locator("th").last.inner_text() == "all classes"
    assert counts.locator("tbody tr").count() == 4  # 3 images and the total
    assert counts.locator("tbody tr").last.locator("td").first.inner_text() == "total"
    assert "1 file(s) left out, not images: notes.txt" in page.locator("#use-boxes").inner_text()
    assert page.locator("#use-gallery img").count() == 3
    env.shot(page, "12b-use-detection-folder")
    # a webcam picture (Chromium's fake camera: its moving test pattern), on its own
    page.locator("#use-folder button[aria-label='Clear']").first.click()
    page.locator("#use-webcam").get_by_text("Click to Access Webcam").click()
    # the capture button shows before the fake camera's first frame: wait for frames, and
    # press again if a press landed before the stream could give one
    page.wait_for_function(
        "() => { const v = document.querySelector('#use-webcam video');"
        " return !!v && v.readyState >= 2 && v.videoWidth > 0; }"
    )
    for _ in range(3):
        page.locator("#use-webcam button[aria-label='capture photo']").click()
        try:
            page.wait_for_selector("#use-webcam img", timeout=20_000)
            break
        except Exception:
            continue
    page.wait_for_selector("#use-webcam img")
    page.locator("#use-detect").click()
    wait_text(page, "use-boxes", "1 image(s)", timeout=120_000)
    assert page.locator("#use-gallery img").count() == 1
    env.shot(page, "12c-use-detection-webcam")

    # Models: the chosen model's results (per class, confusion matrix, PR curves, the images
    # it gets most wrong with ground truth beside its boxes); Validate computes them again
    tab(page, "Models")
    if page.locator("#models-dataset input").first.input_value() != "shapes":
        choose(page, "models-dataset", "shapes")
    page.wait_for_selector('#models-results .st-results img[alt="confusion matrix"]')
    page.wait_for_function(
        "() => [...document.querySelectorAll('#models-results img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    assert page.locator("#models-results .st-worst figure").count() >= 1
    assert "missed" in page.locator("#models-results .st-worst figcaption").first.inner_text()
    assert page.locator("#models-results table.st-results-classes tbody tr").count() >= 1
    page.locator("#models-results").scroll_into_view_if_needed()
    env.shot(page, "detection-results-models")
    before = page.locator("#models-results .st-small").inner_text()
    page.locator("#models-validate").click()
    wait_text(page, "models-message", "Validated shapes/", timeout=180_000)
    page.wait_for_function(
        "(b) => (document.querySelector('#models-results .st-small')?.innerText || b) !== b",
        arg=before,
    )  # the page shows the new bundle (its time), not the old one
    env.shot(page, "detection-results-validated")
    page.context.close()
    assert env.outside() == [], f"requests left loopback: {env.outside()}"


def _slider_filters_without_running(env: Env, page: Any) -> None:
    """The confidence slider filters the boxes already found: the model does not run again
    (each run writes one output folder; there is still one after the slider moves). Real boxes:
    the shared pretrained detector on a coco8 photo finds its people ("Normal")."""
    ref = register_pretrained_detector(env.server.home)
    page.get_by_role("button", name="Refresh models and sounds").click()
    choose(page, "use-detect-model", ref)
    page.locator("#use-images button[aria-label='Clear']").first.click()
    photo = COCO8 / "images" / "val" / "000000000049.jpg"
    upload(page, "#use-images", photo)
    page.locator("#use-detect").click()
    wait_text(page, "use-boxes", "000000000049.jpg", timeout=120_000)  # this run's, not the last
    runs = sorted((env.server.home / "ui" / "outputs").glob("*-predict-*"))
    shown = []
    for fraction in (0.9, 0.0, 0.3):
        _move(page, "use-conf", fraction)
        value = float(page.locator("#use-conf input[type=number]").input_value())
        wait_text(page, "use-boxes", f"at confidence ≥ {value:.2f}")
        figure = page.locator("#use-gallery figure").first
        shown.append(int(figure.get_attribute("data-boxes") or -1))
        assert page.locator("#use-gallery svg rect").count() == shown[-1]
    assert shown[0] < shown[2] <= shown[1], shown  # lower thresholds show more of its boxes
    assert sorted((env.server.home / "ui" / "outputs").glob("*-predict-*")) == runs
    assert "Normal" in page.locator("#use-boxes table.st-counts").inner_text()
    env.shot(page, "detection-results-predict-slider")
    _move(page, "use-conf", 0.25)
    choose(page, "use-detect-model", "shapes/")


def test_api_follows_a_job_to_its_end(env: Env) -> None:
    from smalltrain.tasks.audio.data.synth import make_sound_folder

    s = env.server
    folder = env.data / "api-sounds"
    make_sound_folder(folder, n_files=6, seed=2)
    added = s.api("POST", "api/datasets", {"name": "api-sounds", "path": str(folder)})
    assert added.status == 201, added.body
    assert added.json()["record"]["snapshot"].startswith("6 files")

    bad = s.api("POST", "api/jobs", {"dataset": "api-sounds", "overrides": {"batch_size": 0}})
    assert bad.status == 400
    assert bad.json()["error"]["type"] == "ConfigError"
    assert "batch_size=0: must be >= 1" in bad.json()["error"]["message"]
    assert s.api("GET", "api/jobs/ffffffffffff").status == 404

    tiny = {**AUDIO_SETTINGS, "epochs": 3, "preview_every": 0}
    spec = {"dataset": "api-sounds", "preset": "tiny", "overrides": tiny, "model_name": "api-model"}
    started = s.api("POST", "api/jobs", spec)
    assert started.status == 201, started.body
    job_id = started.json()["id"]
    assert started.json()["status"] in ("QUEUED", "STARTING")  # the scheduler may claim it at once
    assert started.json()["config"]["epochs"] == 3

    events = read_events(f"{s.url}api/jobs/{job_id}/events", s.auth_headers())
    ids = [i for i, _, _ in events if i is not None]
    assert ids == sorted(set(ids)), "event ids must grow strictly"
    kinds = [kind for _, kind, _ in events]
    for kind in ("status_change", "training_started", "epoch", "training_finished"):
        assert kind in kinds, kinds
    assert events[-1][1] == "end"
    assert events[-1][2]["status"] == "COMPLETED"
    assert s.api("GET", f"api/jobs/{job_id}").json()["status"] == "COMPLETED"

    middle = ids[len(ids) // 2]
    again = read_events(
        f"{s.url}api/jobs/{job_id}/events", {**s.auth_headers(), "Last-Event-ID": str(middle)}
    )
    assert [i for i, _, _ in again if i is not None] == [i for i in ids if i > middle]

    listed = s.api("GET", "api/jobs?task=audio&status=COMPLETED&dataset=api-sounds").json()
    assert [j["id"] for j in listed] == [job_id]
    models = s.api("GET", "api/models?dataset=api-sounds").json()
    assert [(m["name"], m["active"], m["dataset_changed"]) for m in models] == [
        ("api-model", True, "")
    ]
    weights = s.api("GET", "api/models/api-sounds/api-model/weights")
    assert weights.status == 200
    assert len(weights.body) == models[0]["weights_size"]
    assert s.api("POST", "api/models/api-sounds/api-model/activate").json()["active"] is True
    refused = s.api("POST", f"api/jobs/{job_id}/cancel", {"mode": "graceful"})
    assert refused.status == 409
    assert refused.json()["error"]["type"] == "InvalidTransition"
    assert s.api("POST", f"api/jobs/{job_id}/resume").status == 409
    assert s.api("DELETE", "api/models/api-sounds/api-model").status == 200
    assert s.api("GET", "api/models?dataset=api-sounds").json() == []
    assert s.api("DELETE", "api/datasets/api-sounds").status == 200
    assert folder.is_dir(), "removing a registered path must not delete the user's files"

    # upload sounds as multipart form data (as `curl -F name=up -F files=@a.wav ...` does)
    boundary = "smalltrain-test-boundary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nup\r\n'.encode()]
    for f in sorted(folder.iterdir())[:3]:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
            f'filename="{f.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
        parts.append(head.encode() + f.read_bytes() + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    import urllib.request

    req = urllib.request.Request(
        f"{s.url}api/datasets/upload", data=body, method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}", **s.auth_headers()},
    )  # fmt: skip
    with urllib.request.urlopen(req, timeout=120) as r:
        uploaded = json.loads(r.read())
    assert r.status == 201
    assert uploaded["record"]["snapshot"].startswith("3 files")
    stored = Path(uploaded["record"]["path"])
    assert stored.is_relative_to(s.home / "datasets")
    assert not list((s.home / "ui" / "staging").glob("api-upload-*")), (
        "staged uploads are cleaned up"
    )
    assert s.api("DELETE", "api/datasets/up").status == 200
    assert not stored.exists(), "removing an uploaded dataset deletes its copy in the home"


def test_auth_guards_page_and_api_and_ctrl_c_checkpoints_jobs(env: Env) -> None:
    from smalltrain.store import JobStore
    from smalltrain.tasks.audio.data.synth import make_sound_folder

    home = env.data / "auth-home"
    server = start_server(home, "--host", "0.0.0.0", "--auth", "ana:s3cret", auth=("ana", "s3cret"))
    try:
        page_401 = http("GET", server.url)
        assert page_401.status == 401
        assert page_401.headers["www-authenticate"].startswith("Basic")
        assert http("GET", server.url + "api/jobs").status == 401
        assert http("GET", server.url + "api/jobs", auth=("ana", "wrong")).status == 401
        assert server.api("GET", "api/jobs").json() == []
        anonymous = env.page()
        try:  # headless chromium cannot ask for a password: it shows 401 or refuses the page
            response = anonymous.goto(server.url)
            refused = response is not None and response.status == 401
        except Exception as e:
            refused = "ERR_INVALID_AUTH_CREDENTIALS" in str(e)
        assert refused, "the page opened without credentials"
        assert not anonymous.locator("#ds-register").count()
        anonymous.context.close()
        signed_in = env.page(http_credentials={"username": "ana", "password": "s3cret"})
        response = signed_in.goto(server.url)
        assert response is not None
        assert response.status == 200
        signed_in.wait_for_selector("#ds-register")
        signed_in.context.close()
        # a job that is training when the server gets Ctrl-C writes a checkpoint and ends CANCELLED
        folder = env.data / "ctrl-c-sounds"
        make_sound_folder(folder, n_files=6, seed=5)
        assert server.api("POST", "api/datasets", {"name": "s", "path": str(folder)}).status == 201
        spec = {
            "dataset": "s",
            "preset": "tiny",
            "overrides": {**AUDIO_SETTINGS, "preview_every": 0},
        }
        job_id = server.api("POST", "api/jobs", spec).json()["id"]
        deadline = time.monotonic() + 120
        while server.api("GET", f"api/jobs/{job_id}").json()["step"] < 2:
            assert time.monotonic() < deadline, "the job did not start training"
            time.sleep(0.2)
    finally:
        assert server.stop() == 0
    assert "write a checkpoint and end CANCELLED" in server.output()
    with JobStore(home / "smalltrain.db") as store:
        job = store.get_job(job_id)
    assert job.status.value == "CANCELLED"
    assert "shutting down" in (job.status_reason or "")
    assert job.checkpoint_path
    assert Path(job.checkpoint_path).is_file()
    assert env.outside() == [], f"requests left loopback: {env.outside()}"
