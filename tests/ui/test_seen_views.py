"""The Job view's "what the model sees" block and the Use tab's counts per class (plain HTML)."""

from __future__ import annotations

from typing import Any

import pytest

from smalltrain.ui.viewmodels.detections import class_counts, counts_html, image_files
from smalltrain.ui.viewmodels.seen import audio_params, seen_html
from smalltrain.ui.views.use import IMAGE_TYPES, detect_sources


def _box(name: str) -> dict[str, object]:
    return {"class_name": name, "confidence": 0.9, "xyxy": [0, 0, 1, 1]}


RECORDS: list[dict[str, Any]] = [
    {"image": "/up/a.png", "boxes": [_box("rect"), _box("circle"), _box("rect")]},
    {"image": "/up/b.png", "boxes": []},
    {"image": "/up/c.png", "boxes": [_box("circle"), _box("rect")]},
]


def test_counts_per_class_per_image_and_in_total() -> None:
    classes, per_image = class_counts(RECORDS)
    assert classes == ["rect", "circle"]  # most boxes first
    assert [dict(c) for c in per_image] == [{"rect": 2, "circle": 1}, {}, {"circle": 1, "rect": 1}]
    html = counts_html(RECORDS)
    assert "<th>image</th><th>rect</th><th>circle</th><th>all classes</th>" in html
    assert "<td>b.png</td><td>0</td><td>0</td><td>0</td>" in html
    assert "<td>total</td><td>3</td><td>2</td><td>5</td>" in html


def test_folder_uploads_keep_images_and_name_the_rest() -> None:
    images, skipped = image_files(["/t/a.PNG", "/t/notes.txt", "/t/b.jpg"], IMAGE_TYPES)
    assert images == ["/t/a.PNG", "/t/b.jpg"]
    assert skipped == ["notes.txt"]
    chosen, _ = detect_sources(["/u/x.png"], ["/t/a.png"], "/cam/shot.webp")
    assert chosen == ["/u/x.png", "/t/a.png", "/cam/shot.webp"]
    with pytest.raises(ValueError, match="folder holds no image: notes.txt"):
        detect_sources(None, ["/t/notes.txt"], None)


def test_seen_block_names_the_drawn_settings_and_escapes() -> None:
    params = {"speed": 1.04, "gain_db": -2.25, "noise_snr_db": None, "shift_s": 0.0125}
    assert audio_params(params) == "speed 1.040× · gain -2.2 dB · no noise · shift +0.013 s"
    item = {"files": {"original": "o.wav", "augmented": "a.wav"}, "source": "<k>.wav",
            "start_s": 0.5, "params": {**params, "noise_snr_db": 21.0}}  # fmt: skip
    html = seen_html("job1", {"task": "audio", "items": [item], "augmentation": None})
    assert "original</span>" in html  # a run from before "seconds" was written: no length
    html = seen_html(
        "job1", {"task": "audio", "items": [{**item, "seconds": 0.9}], "augmentation": None}
    )
    assert "original · 0.90 s</span>" in html
    assert "augmented · 0.90 s</span>" in html
    assert 'preload="metadata"' in html
    assert 'src="/api/jobs/job1/seen/o.wav"' in html
    assert 'src="/api/jobs/job1/seen/a.wav"' in html
    assert "&lt;k&gt;.wav at 0.50 s" in html
    assert "noise at 21.0 dB SNR" in html
    detect = {"task": "detect", "augmentation": {"mosaic": 1.0, "fliplr": 0.5},
              "items": [{"files": {"image": "train_batch0.jpg"}, "batch": 0, "epoch": 0,
                         "mosaic": True, "images": 4, "boxes": 9}]}  # fmt: skip
    html = seen_html("job1", detect)
    assert 'src="/api/jobs/job1/seen/train_batch0.jpg"' in html
    assert "batch 0, epoch 1: mosaic, 4 images, 9 boxes" in html
    assert "settings: mosaic 1.0, fliplr 0.5" in html
    assert "Shown once training starts" in seen_html("job1", None)


def test_the_slider_filters_the_boxes_already_found() -> None:
    from smalltrain.ui.viewmodels.detections import refilter

    def box(name: str, conf: float, cls: int = 0) -> dict[str, Any]:
        return {"class_id": cls, "class_name": name, "confidence": conf, "xyxy": [1, 2, 30, 40]}

    run = {
        "folder": "20260101-predict-abc",
        "skipped": [],
        "records": [
            {"image": "a<b>.png", "file": "000-a_b_.png", "width": 64, "height": 48,
             "boxes": [box("rect", 0.9), box("circle", 0.3, 1), box("rect", 0.05)]},
            {"image": "c.png", "file": "001-c.png", "width": 64, "height": 64, "boxes": []},
        ],
    }  # fmt: skip
    low, low_tables = refilter(run, 0.01)
    high, high_tables = refilter(run, 0.5)
    assert low.count("<rect ") == 3
    assert high.count("<rect ") == 1
    assert 'data-boxes="1"' in high
    assert "/api/outputs/20260101-predict-abc/000-a_b_.png" in high
    assert 'viewBox="0 0 64 48"' in high
    assert "a&lt;b&gt;.png" in high
    assert "<b>" not in high
    assert "2 image(s), 3 box(es) at confidence ≥ 0.01" in low_tables
    assert "2 image(s), 1 box(es) at confidence ≥ 0.50" in high_tables
    assert "<td>total</td><td>1</td><td>1</td>" in high_tables


def test_results_show_the_pictures_or_say_how_to_make_them(tmp_path: Any) -> None:
    from smalltrain.service.detection_results import ModelResults
    from smalltrain.ui.viewmodels.results import results_html

    empty = results_html(ModelResults("cells/m1", tmp_path, None))
    assert "No results for this model" in empty
    assert "smalltrain val cells/m1" in empty
    assert "Validate" in empty
    data = {
        "created": "2026-01-01T00:00:00Z", "source": "best.pt", "images": 4, "conf": 0.25,
        "per_class": {"rect": {"images": 3, "instances": 3, "precision": 0.5, "recall": 0.25,
                               "mAP50": 0.4, "mAP50-95": 0.2}},
        "files": {"confusion_matrix": "confusion_matrix.png", "pr_curve": "pr_curve.png"},
        "worst": [{"image": "x.png", "file": "worst/01-x.png", "missed": 2, "false": 1,
                   "correct": 0}],
    }  # fmt: skip
    html = results_html(ModelResults("cells/m 1", tmp_path, data))
    assert "/api/models/cells/m%201/results/confusion_matrix.png?v=2026-01-01T00%3A00%3A00Z" in html
    assert "/api/models/cells/m%201/results/worst/01-x.png" in html
    assert "x.png: 2 missed, 1 false, 0 right" in html
    assert "<td>rect</td><td>3</td><td>3</td>" in html
