"""HTML and SVG pieces: values are escaped, charts carry their points, ticks are round."""

from __future__ import annotations

import re

from smalltrain.engine.jobs import JobStatus, TrainingJob
from smalltrain.ui.viewmodels import render
from smalltrain.ui.viewmodels.charts import line_chart, nice_ticks
from smalltrain.ui.viewmodels.exports import size_text


def test_nice_ticks_are_round_and_cover_the_range() -> None:
    assert nice_ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    ticks = nice_ticks(0.973, 0.991)
    assert ticks[0] <= 0.973
    assert ticks[-1] >= 0.991 - 1e-9
    assert nice_ticks(5.0, 5.0)  # a flat line still gets an axis


def test_chart_lines_carry_their_point_counts_and_escape_labels() -> None:
    svg = line_chart("Loss <1>", [("train <b>", [(1, 2.0), (2, 1.5), (3, 1.2)]), ("val", [])])
    assert 'data-points="3"' in svg
    assert 'data-label="train &lt;b&gt;"' in svg
    assert "<b>" not in svg.replace("<b>1.2</b>", "")  # only the legend's own bold value
    assert "Loss &lt;1&gt;" in svg
    assert "waiting for the first values" in line_chart("x", [("a", [])])


def test_progress_and_header_escape_names_and_show_state() -> None:
    job = TrainingJob(task="audio", dataset_path="/d", dataset="<script>", model_name="m&m")
    job.status = JobStatus.TRAINING
    job.total_epochs, job.epoch, job.total_steps, job.step, job.progress = 10, 2, 100, 25, 0.25
    header = render.job_header(job)
    assert "<script>" not in header
    assert "&lt;script&gt;" in header
    assert "m&amp;m" in header
    bar = render.progress(job)
    assert 'data-status="TRAINING"' in bar
    assert 'data-step="25"' in bar
    assert re.search(r"epoch 3/10 · step 25/100", bar)


def test_reports_list_every_skipped_file_with_its_reason() -> None:
    html = render.report(
        {"kind": "audio", "files": [{}], "total_duration_s": 3.0,
         "skipped": [{"path": "bad.wav", "reason": "not audio <x>"}]}
    )  # fmt: skip
    assert "bad.wav" in html
    assert "not audio &lt;x&gt;" in html
    detect = render.report(
        {"kind": "detect", "names": ["cell"], "images_per_split": {"train": 3},
         "instances_per_class": {"cell": 9},
         "problems": [{"file": "a.txt", "line": 2, "message": "class 7 out of range"}]}
    )  # fmt: skip
    assert "class 7 out of range" in detect
    assert "cell" in detect


def test_export_sizes_read_well() -> None:
    assert [size_text(n) for n in (812, 40_000, 5 * 2**20 // 2)] == ["812 B", "39 KiB", "2.5 MiB"]


def test_metrics_read_as_words_and_explain_themselves_on_hover() -> None:
    from smalltrain.service import glossary

    cell = render.metric("val/sc", 0.245)
    assert "spectral convergence (validation) 0.245" in cell
    assert 'title="How far the rebuilt spectrum' in cell
    assert glossary.label("best_map50_95") == "mAP50-95"
    assert glossary.explain("val/mAP50").startswith("mean Average Precision")
    assert glossary.label("some/unknown") == "some/unknown"
    # a table keeps the markup of a metric cell and escapes everything else
    html = render.table(("metric", "<b>"), [(cell, "<i>")])
    assert "<abbr" in html
    assert "&lt;b&gt;" in html
    assert "&lt;i&gt;" in html


def test_a_recon_preview_names_its_file_beside_its_original_and_names_are_escaped() -> None:
    info = {"recon": {"file": "<b>kick 1.wav", "start_s": 2.0, "seconds": 1.0,
                      "original": "original.wav", "reference": "reference.wav"}}  # fmt: skip
    html = render.previews("j1", [(1, ["epoch_0001_recon.wav"]), (2, ["epoch_0002_recon.wav"])],
                           newest=1, info=info)  # fmt: skip
    assert "A · original: &lt;b&gt;kick 1.wav (2.00–3.00 s)" in html
    assert "B · recon of &lt;b&gt;kick 1.wav · 1.00 s" in html
    assert html.count("/api/jobs/j1/previews/original.wav") == 2 * 2  # each epoch: player, link
    assert html.count('preload="none"') == 2  # the folded epoch's pair waits to be opened
    assert "<b>" not in html
    # an older run without previews.json: the players as before
    assert "original" not in render.previews("j1", [(1, ["epoch_0001_recon.wav"])])


def test_made_sounds_show_full_names_lengths_spectrograms_and_download_all() -> None:
    name = "a-very-long-name-from-a-sample-pack-" * 3 + "kick.wav"
    html = render.sounds("out1", [f"/x/{name}"], [f"/x/{name}.png"], "all.zip", [0.5])
    assert f"{name} · 0.50 s" in html
    assert 'src="/api/outputs/out1/' + name + '.png"' in html
    assert 'href="/api/outputs/out1/all.zip?download=1"' in html
    assert "Download all (1 sound, zip)" in html
    assert render.sounds("out1", []) == ""
