"""The web UI keeps the user's data and state right (issue 23), through the page: Debian's
chromium driven by Playwright, offline, screenshots in ``test-artifacts/ui/`` (``s1-*``, ``s4-*``).

- a dataset name already taken is refused, naming both folders (page and API), never replaced;
- an uploaded YOLO zip whose data.yaml names an absolute ``path:`` is read inside its upload, and
  train = val is warned about in the page, the API and ``smalltrain inspect``;
- evaluating a model on (copies of) its training files says so and gives no verdict;
- a job that failed on its config offers "Edit and retry" (the Train form with its settings),
  not Resume; weights that are not registered are refused before anything is queued;
- a second click on Start makes no second job; a job's notice leaves with the job;
- the audio workbench (``audio-workbench-*``): previews name the file "recon" reconstructs,
  beside its original; Generate's full names, spectrograms and "Download all" zip; Reconstruct
  from Chromium's fake microphone (fed a 44.1 kHz stereo WAV), and a silent sound refused;
- the forms say what is wrong where it is wrong (issue 23 §4, ``s4-1*``): a dataset registered
  without a name gets its folder's name, as in the CLI, and a missing path is an error beside
  the path field; every wrong train-form field shows its error beside it, all at once, a fixed
  field's error clears, Start is disabled while any field is wrong; a ``.pt`` as base model
  re-plans the preset for fine-tuning (frozen layers, fewer epochs), and the form says so in one
  line ("training from scratch" / "fine-tuning X").

The tests share one server and run in file order: the first sees the home fresh (empty
states), later ones use what earlier ones made, and the last stops the server with a page open
(a quiet Ctrl-C), so no second server is started.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.data import PRETRAINED, require
from tests.ui.browser import (
    AUDIO_SETTINGS,
    NOTICE_JS,
    Env,
    browser_env,
    choose,
    field_box,
    fill,
    module_root,
    notice_text,
    open_app,
    read_events,
    shot_on_failure,
    tab,
    type_into,
    upload,
    wait_notice,
    wait_text,
    watch_notice,
)

pytestmark = pytest.mark.slow
__all__ = ["shot_on_failure"]  # an autouse fixture: a screenshot of a failed test's pages


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Iterator[Env]:
    root = module_root(tmp_path_factory, "ui-states")
    mic = [f"--use-file-for-fake-audio-capture={_mic_wav(root / 'mic.wav')}"]
    with browser_env(root / "home", root, artifacts, "server-states.log", mic) as env:
        yield env


def _mic_wav(path: Path) -> Path:
    """What Chromium's fake microphone hears, looped: a decaying 330 Hz tone, 44.1 kHz stereo."""
    import numpy as np
    import soundfile as sf

    t = np.arange(44100) / 44100
    tone = 0.4 * np.sin(2 * np.pi * 330 * t) * np.exp(-3 * t)
    sf.write(path, np.stack([tone, 0.6 * tone], 1), 44100, subtype="PCM_16")
    return path


def _multipart(name: str, files: list[Path]) -> tuple[bytes, str]:
    boundary = "smalltrain-states-boundary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\n{name}\r\n']
    body = "".join(parts).encode()
    for f in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
            f'filename="{f.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
        body += head.encode() + f.read_bytes() + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_a_fresh_home_says_what_to_do_and_uses_complete_fonts(env: Env) -> None:
    """A fresh home (this module's first test: nothing registered yet): Generate says what to
    do (no AttributeError), the Job tab says there is no job; bold text uses a complete font."""
    assert env.server.api("GET", "api/jobs").json() == [], "must run before the other tests"
    page = env.page()
    open_app(page, env.server.page_url)
    tab(page, "Use")
    page.locator("#use-generate").click()
    wait_text(page, "use-generate-out", "No audio model chosen")
    assert "NoneType" not in page.locator("#use-generate-out").inner_text()
    env.shot(page, "s4-03-fresh-generate")
    tab(page, "Job")
    wait_text(page, "job-header", "No job yet")
    weights = page.evaluate(
        "() => [...document.fonts].filter(f => f.family.includes('Source Sans')).map(f => f.weight)"
    )
    assert "700" in weights, weights
    assert "600" not in weights, weights
    env.shot(page, "s4-04-fresh-job")
    page.context.close()


def test_a_taken_dataset_name_is_refused_in_page_and_api(env: Env) -> None:
    from smalltrain.tasks.audio.data.synth import make_sound_folder

    drums, voice = env.data / "drums", env.data / "voice"
    make_sound_folder(drums, n_files=4, seed=1)
    make_sound_folder(voice, n_files=5, seed=2)
    page = env.page()
    open_app(page, env.server.page_url)
    tab(page, "Datasets")
    fill(page, "ds-name", "drums")
    fill(page, "ds-path", str(drums))
    page.locator("#ds-register").click()
    wait_text(page, "ds-message", "Registered 'drums'")
    fill(page, "ds-path", str(voice))
    page.locator("#ds-register").click()
    wait_text(page, "ds-message", "is registered for")
    shown = page.locator("#ds-message").inner_text()
    assert str(drums) in shown
    assert str(voice) in shown
    assert "Remove…" in shown  # the page's own way, not a CLI flag
    assert "--replace" not in shown
    assert page.locator("#ds-message .st-msg-error").count() == 1
    env.shot(page, "s1-01-dataset-name-taken")
    record = env.server.api("GET", "api/datasets/drums").json()["record"]
    assert record["path"] == str(drums.resolve())

    # the API refuses too (409), by path and by upload, and nothing changes
    again = env.server.api("POST", "api/datasets", {"name": "drums", "path": str(voice)})
    assert again.status == 409, again.body
    assert again.json()["error"]["type"] == "DatasetExists"
    body, ctype = _multipart("drums", sorted(voice.iterdir())[:2])
    import urllib.error
    import urllib.request

    req = urllib.request.Request(
        f"{env.server.url}api/datasets/upload", data=body, method="POST",
        headers={"Content-Type": ctype, **env.server.auth_headers()},
    )  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=60)
    assert refused.value.code == 409
    assert json.loads(refused.value.read())["error"]["type"] == "DatasetExists"
    assert env.server.api("GET", "api/datasets/drums").json()["record"]["path"] == str(
        drums.resolve()
    )
    page.context.close()


def _zip_with_outside_path(env: Env) -> Path:
    """A YOLO dataset zipped as a user's labelling tool writes it: data.yaml names the folder
    on the user's machine (absolute), and val is the train folder."""
    from smalltrain.tasks.detect.synth import make_shapes_dataset

    original = make_shapes_dataset(env.data / "cells-original", n_train=6, n_val=2).parent
    archive = env.data / "cells.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(original.rglob("*")):
            if f.is_file() and f.name != "data.yaml":
                zf.write(f, f"cells/{f.relative_to(original).as_posix()}")
        data = {"path": str(original), "train": "images/train", "val": "images/train"}
        zf.writestr("cells/data.yaml", yaml.safe_dump({**data, "names": ["rect", "circle"]}))
    # the folder the yaml names holds more images than the zip: reading it would count them
    extra = original / "images" / "train" / "outside.png"
    shutil.copyfile(next((original / "images" / "train").glob("*.png")), extra)
    return archive


def test_an_uploaded_zip_stays_inside_its_folder_and_train_equal_val_is_warned(env: Env) -> None:
    archive = _zip_with_outside_path(env)
    page = env.page()
    open_app(page, env.server.page_url)
    tab(page, "Datasets")
    fill(page, "ds-name", "cells")
    upload(page, "#ds-files", archive)
    page.locator("#ds-upload").click()
    wait_text(page, "ds-message", "Registered 'cells'")
    shown = page.locator("#ds-message").inner_text()
    assert "points outside the upload" in shown
    # 6 train images, read from the upload (the original folder has a 7th), and val = train
    assert "12 images" in shown, shown
    page.wait_for_selector('#ds-report .st-report[data-kind="detect"]')
    wait_text(page, "ds-report", "train and val share images")
    env.shot(page, "s1-02-zip-outside-path-train-equals-val")
    page.context.close()

    got = env.server.api("GET", "api/datasets/cells").json()
    assert Path(got["record"]["path"]).is_relative_to(env.server.home / "datasets")
    assert any("train and val share images" in w for w in got["report"]["warnings"])
    assert "outside.png" not in json.dumps(got)
    # the CLI's `inspect` says it too (the same task check)
    out = subprocess.run(
        [sys.executable, "-m", "smalltrain.cli.main", "--home", str(env.server.home),
         "inspect", "cells"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "train and val share images" in out.stdout + out.stderr, out


def test_a_job_failed_on_its_config_offers_edit_and_retry(env: Env) -> None:
    from smalltrain.engine.jobs import JobStatus, TrainingJob
    from smalltrain.store import JobStore
    from smalltrain.tasks.detect.synth import make_shapes_dataset

    data_yaml = make_shapes_dataset(env.data / "shapes", n_train=4, n_val=2)
    added = env.server.api("POST", "api/datasets", {"name": "shapes", "path": str(data_yaml)})
    assert added.status == 201, added.body
    # weights that are not registered are refused before anything is queued
    page = env.page()
    open_app(page, env.server.page_url)
    tab(page, "Train")
    choose(page, "train-dataset", "shapes")
    page.wait_for_selector('#train-info [data-task="detect"]')
    before = len(env.server.api("GET", "api/jobs").json())
    type_into(field_box(page, "Base model (.pt, weights name or .yaml)"), "missing-weights.pt")
    # the form says it at once, naming the field (not "Settings are valid")
    wait_text(page, "train-status", "base_model='missing-weights.pt': no registered weights")
    assert "Weights tab" in page.locator("#train-status").inner_text()
    # at the field too, and Start waits for a valid form; the API refuses the same start
    page.wait_for_selector("#train-field-0.st-field-error")
    assert not page.locator("#train-start").is_enabled()
    spec = {"dataset": "shapes", "overrides": {"base_model": "missing-weights.pt"}}
    refused = env.server.api("POST", "api/jobs", spec)
    assert refused.status >= 400
    assert "base_model" in refused.body.decode()
    assert len(env.server.api("GET", "api/jobs").json()) == before
    env.shot(page, "s1-03-weights-not-registered")

    # a job that failed on its config (as one does when its weights vanish before it runs)
    config = {"base_model": "gone.pt", "epochs": 3, "image_size": 64, "batch_size": 4}
    job = TrainingJob(
        task="detect", dataset_path=str(data_yaml), dataset="shapes", model_name="cells-v1",
        config=config, status=JobStatus.FAILED,
        error="WeightsNotFound: base_model 'gone.pt' is not on disk; give a local .pt or a .yaml",
    )  # fmt: skip
    with JobStore(env.server.home / "smalltrain.db") as store:
        store.insert_job(job)
    page.goto(f"{env.server.page_url}&job={job.id}")
    page.wait_for_selector(".st-title[data-loaded]")
    page.wait_for_selector(f'#job-header [data-job="{job.id}"]')
    page.wait_for_selector("#job-retry", state="visible")
    assert not page.locator("#job-resume").is_visible()
    # a detection job's Previews section says why it is empty; an ended job has no memory gauge
    wait_text(page, "job-previews", "writes no sound previews")
    page.wait_for_function("!document.querySelector('#job-gauges').innerText.includes('measuring')")
    assert "resident" not in page.locator("#job-gauges").inner_text()
    env.shot(page, "s1-04-failed-on-config-edit-and-retry")
    page.locator("#job-retry").click()
    wait_text(page, "train-status", "failed on its config")
    assert page.locator("#tab-train").is_visible()
    assert field_box(page, "Epochs").input_value() == "3"
    assert field_box(page, "Image size (px)").input_value() == "64"
    env.shot(page, "s1-05-edit-and-retry-form")
    page.context.close()


def test_evaluating_on_training_files_says_so(env: Env) -> None:
    from smalltrain.tasks.audio.data.synth import make_sound_folder

    folder = env.data / "evalkit"
    make_sound_folder(folder, n_files=4, seed=3)
    assert (
        env.server.api("POST", "api/datasets", {"name": "evalkit", "path": str(folder)}).status
        == 201
    )
    # one preview (a sample and a recon) at the last epoch, for the audio workbench's test
    overrides = {**AUDIO_SETTINGS, "epochs": 2, "preview_every": 2, "preview_count": 1}
    spec = {"dataset": "evalkit", "preset": "tiny", "overrides": overrides, "model_name": "ev1"}
    started = env.server.api("POST", "api/jobs", spec)
    assert started.status == 201, started.body
    events = read_events(
        f"{env.server.url}api/jobs/{started.json()['id']}/events", env.server.auth_headers()
    )
    assert events[-1][2]["status"] == "COMPLETED", events[-1]
    # the end of the job in words, as the CLI ends `train`: best epoch, verdict, activation
    page = env.page()
    page.goto(f"{env.server.page_url}&job={started.json()['id']}")
    page.wait_for_selector("#job-header .st-summary")
    summary = page.locator("#job-header .st-summary").inner_text()
    assert "best epoch" in summary, summary
    assert "a linear model of its size (PCA)" in summary, summary
    assert "the first model of dataset 'evalkit'" in summary, summary
    env.shot(page, "s2-01-job-summary")
    page.context.close()
    # the "held-out" upload is a copy of the training files: new names, new mtimes, same bytes
    copies = env.data / "held-out"
    copies.mkdir()
    for i, f in enumerate(sorted(folder.iterdir())):
        (copies / f"take{i}{f.suffix}").write_bytes(f.read_bytes())
    page = env.page()
    open_app(page, env.server.page_url)
    tab(page, "Use")
    page.get_by_role("tab", name="Evaluate", exact=True).click()
    page.wait_for_function("document.querySelector('#use-audio-model input').value.includes('ev1')")
    choose(page, "use-eval-dataset", "evalkit")
    upload(page, "#use-eval-files", sorted(copies.iterdir()))
    page.locator("#use-evaluate").click()
    wait_text(page, "use-evaluate-out", "training split", timeout=120_000)
    text = page.locator("#use-evaluate-out").inner_text()
    # the split keeps one file for validation; the others trained the model
    assert "of 4 files evaluated were in the model's training split" in text, text
    assert "no verdict" in text
    assert "(trained on)" in text
    assert "the chosen dataset 'evalkit' was not used" in text
    env.shot(page, "s1-06-evaluate-on-training-files")
    page.context.close()


def test_one_job_per_start_and_notices_belong_to_their_job(env: Env) -> None:
    """Start clicked twice makes one job; Stop's notice leaves when the job has ended, and
    when another job is shown; the Jobs tab gives final metrics only to ended jobs, with
    readable names."""
    page = env.page()
    open_app(page, env.server.page_url)
    tab(page, "Train")
    choose(page, "train-dataset", "drums")
    page.wait_for_selector('#train-info [data-task="audio"]')
    before = {j["id"] for j in env.server.api("GET", "api/jobs").json()}
    # two clicks in the same moment (a double click)
    page.evaluate(
        "() => { const b = document.querySelector('#train-start'); b.click(); b.click(); }"
    )
    wait_text(page, "train-message", "queued")
    found = re.search(r"Job ([0-9a-f]{12})", page.locator("#train-message").inner_text())
    assert found, page.locator("#train-message").inner_text()
    job_id = found.group(1)
    page.wait_for_selector(f'#job-header [data-job="{job_id}"]')
    # Stop once it trains (a QUEUED job is cancelled at once, and its notice rightly stays)
    # and before it ends (it is a long job): a notice about this job...
    page.wait_for_selector('#job-progress .st-progress[data-status="TRAINING"]', timeout=120_000)
    watch_notice(page)
    page.locator("#job-stop").click()
    wait_notice(page, f"Job {job_id}: stop requested")
    env.shot(page, "s4-01-stop-requested")
    page.wait_for_selector('#job-progress .st-progress[data-status="CANCELLED"]', timeout=120_000)
    # ...that is cleared once the job has ended: the header says CANCELLED
    page.wait_for_function(f"() => {NOTICE_JS} === ''")
    # by now a second start of the double click would long have been queued: there is none
    new = [j for j in env.server.api("GET", "api/jobs").json() if j["id"] not in before]
    assert [j["id"] for j in new] == [job_id], new
    # ...that leaves when another job is shown
    other = next(j["id"] for j in env.server.api("GET", "api/jobs").json() if j["id"] != job_id)
    page.goto(f"{env.server.page_url}&job={other}")
    page.wait_for_selector(f'#job-header [data-job="{other}"]')
    assert notice_text(page) == ""

    # Jobs: final metrics only for ended jobs, in words, explained on hover; no "STATE: -"
    tab(page, "Jobs")
    page.wait_for_selector("#jobs-table table")
    table = page.locator("#jobs-table").inner_text()
    assert "val/" not in table, table
    assert "CANCELLED: -" not in table
    assert "FAILED: -" not in table
    env.shot(page, "s4-02-jobs-tab")
    page.context.close()


_DURATIONS = """(sel) => Promise.all([...document.querySelectorAll(sel + ' audio')].map(a =>
    new Promise((ok, fail) => {
        a.preload = 'metadata';
        a.addEventListener('loadedmetadata', () => ok(a.duration));
        a.addEventListener('error', () => fail(new Error('audio error ' + a.error?.code)));
        a.load();
    })))"""


def test_reconstruct_ab_generate_duration_and_a_quiet_ctrl_c(env: Env) -> None:
    """Reconstruct: original (A) and model output (B), both playable at full width whatever
    the file name, each with its spectrogram. Generate: the duration control (CLI --duration).
    Then Ctrl-C with the page open: the server stops without a trace."""
    folder = env.data / "evalkit"
    source = sorted(folder.iterdir())[0]
    long_name = env.data / ("a-very-long-file-name-from-a-sample-pack-" * 3 + source.name)
    long_name.write_bytes(source.read_bytes())
    page = env.page()
    open_app(page, env.server.page_url)
    tab(page, "Use")
    page.get_by_role("tab", name="Reconstruct", exact=True).click()
    page.wait_for_function("document.querySelector('#use-audio-model input').value.includes('ev1')")
    page.locator("#tab-use input[type=file]").first.set_input_files(str(long_name))
    page.locator("#use-reconstruct").click()
    page.wait_for_selector("#use-reconstruct-out .st-images img", timeout=120_000)
    text = page.locator("#use-reconstruct-out").inner_text()
    assert "A · original" in text
    assert "B · model output" in text
    widths = page.eval_on_selector_all(
        "#use-reconstruct-out audio", "els => els.map(e => e.getBoundingClientRect().width)"
    )
    assert len(widths) == 2
    assert min(widths) >= 200, widths
    assert min(page.evaluate(_DURATIONS, "#use-reconstruct-out")) > 0.1
    page.wait_for_function(
        "[...document.querySelectorAll('#use-reconstruct-out img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    assert page.locator("#use-reconstruct-out img").count() == 2
    env.shot(page, "s3-01-reconstruct-ab")

    page.get_by_role("tab", name="Generate", exact=True).click()
    box = page.locator("#use-duration input[type=number]")
    box.fill("2")
    box.press("Enter")
    page.locator("#use-generate").click()
    page.wait_for_selector("#use-generate-out audio", timeout=120_000)
    durations = page.evaluate(_DURATIONS, "#use-generate-out")
    assert all(abs(d - 2.0) < 0.1 for d in durations), durations
    env.shot(page, "s3-02-generate-duration")

    page.context.close()


_LOADED = (
    "(sel) => [...document.querySelectorAll(sel)].every(i => i.complete && i.naturalWidth > 0)"
)


# The forms say what is wrong where it is wrong (issue 23 §4; screenshots ``s4-1*``). These
# tests register their own datasets (``snares``, ``tiles``) and weights, and start no job.


def _info(page, elem_id: str) -> str:  # type: ignore[no-untyped-def]
    """What a field shows around its input: label and info (where its error is)."""
    return page.locator(f"#{elem_id} .info-text").inner_text()


#: Where the train form shows a field (``settings.MAIN_FIELDS`` order); its label alone does
#: not find it once an error is written under it.
AUDIO_SLOT = {"Epochs": 0, "Batch size": 1}
DETECT_SLOT = {"Base model": 0, "Epochs": 1, "Frozen backbone layers": 6}


def _slot(page, i: int):  # type: ignore[no-untyped-def]
    return page.locator(f"#train-field-{i} textarea, #train-field-{i} input").first


def _start_enabled(page) -> bool:  # type: ignore[no-untyped-def]
    return page.locator("#train-start").is_enabled()


def test_dataset_name_defaults_to_the_folder_and_errors_sit_at_their_field(env: Env) -> None:
    from smalltrain.tasks.audio.data.synth import make_sound_folder

    snares = env.data / "snares"
    make_sound_folder(snares, n_files=4, seed=3)
    page = env.page()
    open_app(page, env.server.page_url)
    tab(page, "Datasets")
    page.locator("#ds-register").click()  # no path at all
    page.wait_for_selector("#ds-path.st-field-error")
    assert "give the path" in _info(page, "ds-path")
    env.shot(page, "s4-11-dataset-error-at-field")
    fill(page, "ds-path", str(snares))
    page.wait_for_function(
        "() => document.querySelector('#ds-name input, #ds-name textarea')"
        ".placeholder.startsWith('snares')"
    )
    page.locator("#ds-register").click()
    wait_text(page, "ds-message", "Registered 'snares'")
    assert page.locator("#ds-name input, #ds-name textarea").first.input_value() == "snares"
    assert page.locator("#ds-path.st-field-error").count() == 0  # the stale error cleared
    env.shot(page, "s4-10-dataset-name-defaults-to-folder")
    # a name that cannot be one: the error sits beside the name (and the path's is clear)
    fill(page, "ds-name", "kit/snares")
    page.locator("#ds-register").click()
    page.wait_for_selector("#ds-name.st-field-error")
    assert "path separators" in _info(page, "ds-name")
    assert page.locator("#ds-path.st-field-error").count() == 0
    page.context.close()


def test_every_error_at_its_field_and_start_waits(env: Env) -> None:
    page = env.page()
    open_app(page, env.server.page_url)
    tab(page, "Train")
    choose(page, "train-dataset", "snares")
    page.wait_for_selector('#train-info [data-task="audio"]')
    wait_text(page, "train-plan", "training from scratch")
    assert _start_enabled(page)
    type_into(_slot(page, AUDIO_SLOT["Batch size"]), "0")
    type_into(_slot(page, AUDIO_SLOT["Epochs"]), "-3")
    # the answer to the last keystroke ("-" alone is wrong too, with another message)
    wait_text(page, "train-status", "epochs=-3")
    wait_text(page, "train-status", "2 fields need a change")
    slots = page.locator("#tab-train .st-field-error")
    assert slots.count() == 2, page.locator("#train-status").inner_text()
    shown = " ".join(slots.nth(i).inner_text() for i in range(2))
    assert "batch_size=0" in shown
    assert "epochs=-3" in shown
    assert not _start_enabled(page)
    env.shot(page, "s4-12-every-error-at-its-field")
    type_into(_slot(page, AUDIO_SLOT["Batch size"]), "4")
    wait_text(page, "train-status", "1 field needs a change")
    assert page.locator("#tab-train .st-field-error").count() == 1
    assert "epochs=-3" in page.locator("#tab-train .st-field-error").inner_text()
    assert not _start_enabled(page)
    type_into(_slot(page, AUDIO_SLOT["Epochs"]), "2")
    wait_text(page, "train-status", "Settings are valid")
    assert page.locator("#tab-train .st-field-error").count() == 0
    page.wait_for_function("() => !document.querySelector('#train-start').disabled")
    env.shot(page, "s4-13-errors-cleared-start-enabled")
    page.context.close()


def test_a_pt_base_model_replans_for_fine_tuning(env: Env) -> None:
    from smalltrain.service.weights import WeightsStore
    from smalltrain.tasks.detect.synth import make_shapes_dataset

    WeightsStore(env.server.home).add(require(PRETRAINED))
    data_yaml = make_shapes_dataset(env.data / "tiles", n_train=6, n_val=2)
    page = env.page()
    open_app(page, env.server.page_url)
    tab(page, "Datasets")
    fill(page, "ds-path", str(data_yaml))
    page.locator("#ds-register").click()
    wait_text(page, "ds-message", "Registered 'tiles'")
    tab(page, "Train")
    choose(page, "train-dataset", "tiles")
    page.wait_for_selector('#train-info [data-task="detect"]')
    wait_text(page, "train-plan", "training from scratch (yolo11n.yaml)")
    scratch_epochs = int(_slot(page, DETECT_SLOT["Epochs"]).input_value())
    assert _slot(page, DETECT_SLOT["Frozen backbone layers"]).input_value() == "0"
    env.shot(page, "s4-14-plan-from-scratch")
    type_into(_slot(page, DETECT_SLOT["Base model"]), PRETRAINED.name)
    wait_text(page, "train-plan", f"fine-tuning {PRETRAINED.name}: 10 backbone layers frozen")
    assert _slot(page, DETECT_SLOT["Frozen backbone layers"]).input_value() == "10"
    assert int(_slot(page, DETECT_SLOT["Epochs"]).input_value()) < scratch_epochs
    wait_text(page, "train-status", "planned again")
    assert _start_enabled(page)
    env.shot(page, "s4-15-plan-fine-tuning")
    # the chosen weights are remembered: a reload plans the same fine-tune
    open_app(page, env.server.page_url)
    tab(page, "Train")
    wait_text(page, "train-plan", f"fine-tuning {PRETRAINED.name}")
    # back to a .yaml: from scratch again, with the scratch recipe
    type_into(_slot(page, DETECT_SLOT["Base model"]), "yolo11n.yaml")
    wait_text(page, "train-plan", "training from scratch (yolo11n.yaml)")
    assert int(_slot(page, DETECT_SLOT["Epochs"]).input_value()) == scratch_epochs
    page.context.close()


def test_an_ended_job_shows_one_verdict_no_measuring_and_says_previews_are_off(
    env: Env,
) -> None:
    """A finished audio job (inserted as the scheduler leaves one) whose run warned
    overfitting, then underfitting that replaced it: the page shows the standing verdict only;
    its gauges never say "measuring…"; its Previews say they were off and how to turn them on."""
    from smalltrain.engine.events import WarningEvent
    from smalltrain.engine.jobs import JobStatus, TrainingJob
    from smalltrain.store import JobStore

    job = TrainingJob(
        task="audio", dataset_path=str(env.data / "snares"), dataset="snares",
        model_name="quiet-v1", config={"epochs": 30, "preview_every": 0},
        status=JobStatus.COMPLETED,
    )  # fmt: skip
    said = [
        WarningEvent(code="overfitting", message="validation loss is 50% above", epoch=2),
        WarningEvent(code="dataset_changed", message="the dataset changed since"),
        WarningEvent(
            code="underfitting",
            message="training SC 0.700 is still above PCA's validation SC 0.450 after 1000 "
            "steps: the model underfits. This replaces the overfitting warning of epoch 3: the "
            "gap between validation and training loss was a symptom",
            epoch=24,
        ),
    ]
    with JobStore(env.server.home / "smalltrain.db") as store:
        store.insert_job(job)
        store.history.append_events(job.id, [e.to_dict() for e in said])
    page = env.page()
    page.goto(f"{env.server.page_url}&job={job.id}")
    page.wait_for_selector(f'#job-header [data-job="{job.id}"]')
    page.wait_for_selector("#job-gauges .st-gauges")
    assert "measuring" not in page.locator("#job-gauges").inner_text()
    wait_text(page, "job-previews", "Previews are off for this run")
    assert "Preview every N epochs" in page.locator("#job-previews").inner_text()
    codes = page.locator("#job-warnings li").evaluate_all("els => els.map(e => e.dataset.code)")
    assert codes == ["dataset_changed", "underfitting"]
    assert "This replaces the overfitting warning" in page.locator("#job-warnings").inner_text()
    env.shot(page, "s2-10-one-fit-verdict-ended-job-previews-off")
    page.context.close()


def test_the_sweeps_tab_shows_trials_curves_early_stops_and_the_best(env: Env) -> None:
    """A sweep as the sweep service stores one (its trials, their epoch events, an ASHA stop,
    the best registered): the tab reads it with ``get_sweep``, as ``smalltrain sweep show``."""
    from smalltrain.engine.events import EpochMetrics
    from smalltrain.engine.jobs import JobStatus, TrainingJob
    from smalltrain.service.sweeps.asha import Stop
    from smalltrain.store import JobStore
    from smalltrain.store.sweeps import SweepRecord, SweepStore

    sweep = SweepRecord(id="5eed5a1b2c3d", task="audio", metric="val/sc", mode="min",
                        dataset="snares", spec={"trials": 3, "vary": {"seed": None}})  # fmt: skip
    curves = {1: [0.9, 0.7, 0.55, 0.5], 2: [0.95, 0.9], 3: [0.85, 0.6, 0.45, 0.41]}
    stop = Stop(epochs=2, value=0.9, cutoff=0.7, others=1).reason("val/sc")
    trials = []
    for n in curves:
        stopped = n == 2
        trials.append(TrainingJob(
            task="audio", dataset_path=str(env.data / "snares"), dataset="snares",
            model_name=f"snares-sweep-t{n}", config={"seed": n, "epochs": 4},
            status=JobStatus.CANCELLED if stopped else JobStatus.COMPLETED,
            status_reason=stop if stopped else None,
            artifacts={"trial": n, "setting": {"seed": n},
                       **({"early_stopped": stop} if stopped else {}),
                       **({"model": "snares-sweep-t3"} if n == 3 else {})},
        ))  # fmt: skip
    with JobStore(env.server.home / "smalltrain.db") as store:
        SweepStore(store).insert(sweep, trials)
        for job, curve in zip(trials, curves.values(), strict=True):
            events = [
                EpochMetrics(epoch=e, total_epochs=4, metrics={"val/sc": v}).to_dict()
                for e, v in enumerate(curve)
            ]
            store.history.append_events(job.id, events)
        SweepStore(store).update(sweep.id, status="COMPLETED", best_job_id=trials[2].id,
                                 best_model="snares-sweep-t3")  # fmt: skip
    page = env.page()
    open_app(page, env.server.page_url)
    tab(page, "Sweeps")
    page.wait_for_selector(f'#sweep-view [data-sweep="{sweep.id}"]')
    view = page.locator("#sweep-view")
    assert page.locator('#sweep-view [data-best-trial="3"]').count() == 1
    assert "registered as model 'snares-sweep-t3'" in view.inner_text()
    # every trial's curve on one chart, the stopped one marked
    lines = page.locator("#sweep-view polyline[data-label]")
    labels = lines.evaluate_all("els => els.map(e => e.dataset.label)")
    assert labels == ["trial 1", "trial 2 ✂", "trial 3 (best)"], labels
    rows = page.locator("#sweep-view table.st-sweep-trials tbody tr")
    assert rows.count() == 3
    assert "stopped early by ASHA after epoch 2" in rows.nth(1).inner_text()
    assert "cut-off 0.7" in rows.nth(1).inner_text()
    assert rows.nth(2).inner_text().startswith("3 ★")
    env.shot(page, "s2-11-sweeps-trials-curves-best")
    page.context.close()


def test_audio_workbench_previews_download_all_and_a_recording(env: Env) -> None:
    """Previews: "recon" names its file, its original beside it. Generate: full names and
    lengths, a spectrogram each, "Download all" (a zip). Reconstruct: a silent upload is refused
    in words; a microphone recording goes through the same call as an upload."""
    import numpy as np
    import soundfile as sf

    (job,) = env.server.api("GET", "api/jobs?dataset=evalkit").json()
    page = env.page()
    page.goto(f"{env.server.page_url}&job={job['id']}")
    page.wait_for_selector("#job-previews .st-recon")
    source = page.locator("#job-previews .st-recon").first.get_attribute("data-source")
    assert source
    assert (env.data / "evalkit" / source).is_file()
    pair = page.locator("#job-previews .st-recon").first.inner_text()
    assert f"A · original: {source}" in pair
    assert f"B · recon of {source}" in pair
    assert min(page.evaluate(_DURATIONS, "#job-previews")) > 0.1  # each one plays
    page.locator("#job-previews").scroll_into_view_if_needed()
    env.shot(page, "audio-workbench-01-previews")

    tab(page, "Use")
    page.wait_for_function("document.querySelector('#use-audio-model input').value")
    how_many = page.locator("#use-how-many input[type=number]")
    how_many.fill("2")
    how_many.press("Enter")
    page.locator("#use-generate").click()
    page.wait_for_selector("#use-generate-out .st-sound img", timeout=120_000)
    cards = page.locator("#use-generate-out .st-sound")
    names = [cards.nth(i).get_attribute("data-file") or "" for i in range(cards.count())]
    assert names == ["evalkit-ev1-seed0-000.wav", "evalkit-ev1-seed0-001.wav"]
    for i, name in enumerate(names):  # the whole name and the length; the player keeps its width
        assert re.search(rf"{re.escape(name)} · \d\.\d\d s", cards.nth(i).inner_text())
    widths = page.eval_on_selector_all(
        "#use-generate-out audio", "els => els.map(e => e.getBoundingClientRect().width)"
    )
    assert min(widths) >= 200, widths
    assert min(page.evaluate(_DURATIONS, "#use-generate-out")) > 0.1
    page.wait_for_function(_LOADED, arg="#use-generate-out .st-sound img")
    link = page.locator("#use-generate-out .st-download-all a")
    assert "Download all (2 sounds, zip)" in link.inner_text()
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == "evalkit-ev1-seed0.zip"
    with zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes())) as z:
        assert sorted(z.namelist()) == names
        assert all(z.read(n)[:4] == b"RIFF" for n in names)
    env.shot(page, "audio-workbench-02-generate")

    page.get_by_role("tab", name="Reconstruct", exact=True).click()
    recorder = page.locator("#use-reconstruct-input")
    silent = env.data / "silence.wav"
    sf.write(silent, np.zeros(48000), 48000)
    upload(
        page,
        "#use-reconstruct-input",
        silent,
        "#use-reconstruct-input a[data-testid=download-link]",
    )
    page.locator("#use-reconstruct").click()
    wait_text(page, "use-reconstruct-out", "silence.wav is silent", timeout=120_000)
    assert "Traceback" not in page.locator("#use-reconstruct-out").inner_text()
    env.shot(page, "audio-workbench-03-silent-upload")
    # record about a second from the (fake) microphone, then stop
    recorder.get_by_role("button", name="Clear").click()
    page.wait_for_function("!document.querySelector('#use-reconstruct-out .st-msg')")
    recorder.get_by_role("button", name="Record audio").click()
    recorder.locator("button.record-button").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#use-reconstruct-input time')]"
        ".some(t => /^0:0[1-9]/.test(t.textContent))"
    )
    recorder.locator("button.stop-button").click()
    recorder.locator("a[data-testid=download-link]").wait_for()
    page.wait_for_function(  # the recorded clip's waveform is drawn, with its length
        "/^0:0[1-9]/.test(document.querySelector('#use-reconstruct-input time#duration')"
        "?.textContent || '')"
    )
    env.shot(page, "audio-workbench-04-recorded")
    page.locator("#use-reconstruct").click()
    page.wait_for_selector("#use-reconstruct-out .st-images img", timeout=120_000)
    text = page.locator("#use-reconstruct-out").inner_text()
    assert "A · original: recording.wav" in text, text
    assert "B · model output: recording-reconstructed.wav" in text, text
    durations = page.evaluate(_DURATIONS, "#use-reconstruct-out")
    assert min(durations) > 0.5, durations
    assert abs(durations[0] - durations[1]) < 0.05, durations
    page.wait_for_function(_LOADED, arg="#use-reconstruct-out img")
    env.shot(page, "audio-workbench-05-reconstruct-recording")
    # Ctrl-C with this page open (its polling connected) stops the server without a trace.
    # The module's last test: it stops the module's server (saves starting a second one).
    code = env.server.stop()
    out = env.server.output()
    assert code == 0, out
    assert "Traceback" not in out, out
    assert "CancelledError" not in out, out
    page.context.close()
