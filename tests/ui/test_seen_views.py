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
