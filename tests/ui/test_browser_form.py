"""The forms say what is wrong where it is wrong (issue 23 §4), through the page: Debian's
chromium driven by Playwright, offline, screenshots in ``test-artifacts/ui/`` (``s4-1*``).

- a dataset registered without a name gets its folder's name, as in the CLI; a missing path is
  an error beside the path field;
- every wrong train-form field shows its error beside it, all at once; a fixed field's error
  clears; Start is disabled while any field is wrong;
- a ``.pt`` as base model re-plans the preset for fine-tuning (frozen layers, fewer epochs),
  and the form says so in one line ("training from scratch" / "fine-tuning X").
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.data import PRETRAINED, require
from tests.ui.browser import (
    Env,
    browser_env,
    choose,
    fill,
    module_root,
    open_app,
    shot_on_failure,
    tab,
    type_into,
    wait_text,
)

pytestmark = pytest.mark.slow
__all__ = ["shot_on_failure"]  # an autouse fixture: a screenshot of a failed test's pages


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Iterator[Env]:
    root = module_root(tmp_path_factory, "ui-form")
    with browser_env(root / "home", root, artifacts, "server-form.log") as env:
        yield env


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
    data_yaml = make_shapes_dataset(env.data / "cells", n_train=6, n_val=2)
    page = env.page()
    open_app(page, env.server.page_url)
    tab(page, "Datasets")
    fill(page, "ds-path", str(data_yaml))
    page.locator("#ds-register").click()
    wait_text(page, "ds-message", "Registered 'cells'")
    tab(page, "Train")
    choose(page, "train-dataset", "cells")
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
