"""Export parity and CPU speed: the shared pretrained YOLOv8s as .pt, ONNX, TorchScript and
OpenVINO (those whose packages are installed) on 16 real photos (coco8's 8 and 8 of bccd's val),
and an audio model's generation in torch beside the exported ONNX ``example.py``.

    .venv/bin/python bench/bench_export.py

Detection: per format, ms per image (``predict`` at 640 px on the CPU, the first image's
warm-up excluded), images with the .pt's box count at confidence 0.25, and the smallest IoU of a
matched box. Audio: a tiny model trained in seconds on synthetic tones, then ms per second of
audio for 8 one-chunk sounds, torch (``sample``) against ``example.py``'s ``Model.generate``.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.data import BCCD, COCO8, PRETRAINED  # noqa: E402
from tests.tasks.detect.test_export import matched_ious  # noqa: E402

from smalltrain import paths  # noqa: E402
from smalltrain.service.exports import export_model  # noqa: E402
from smalltrain.store import ModelEntry, ModelStore  # noqa: E402


def _register(home: Path, weights: Path, dataset: str, task: str) -> None:
    ModelStore(paths.models_dir(home)).save(ModelEntry(
        dataset=dataset, name="m", weights=weights, task=task, config={}, metrics={},
        base_model=None, epochs_completed=1, headline=("best", None),
    ))  # fmt: skip


def detection(home: Path) -> None:
    from smalltrain.tasks.detect.predict import predict

    images = (
        sorted((COCO8 / "images").rglob("*.jpg"))
        + sorted((BCCD / "images" / "val").glob("*.jpg"))[:8]
    )
    _register(home, PRETRAINED, "falls", "detect")
    models = {"pt": PRETRAINED}
    for fmt, module in (("onnx", "onnxruntime"), ("torchscript", None), ("openvino", "openvino")):
        if module and importlib.util.find_spec(module) is None:
            print(f"{fmt}: not installed, skipped")
            continue
        started = time.perf_counter()
        made = export_model(home, "falls/m", fmt)
        print(f"exported {fmt} in {time.perf_counter() - started:.1f} s")
        models[fmt] = made.path
    results = {}
    print(f"\n{len(images)} images, 640 px, CPU, conf 0.25")
    print(f"{'format':12s} {'ms/image':>9s} {'same count':>11s} {'min IoU':>8s}")
    for fmt, path in models.items():
        kwargs = {"conf": 0.25, "imgsz": 640, "device": "cpu", "home": home}
        predict(path, images[:1], **kwargs)  # load and warm up
        started = time.perf_counter()
        records = predict(path, images, **kwargs)
        ms = (time.perf_counter() - started) * 1000 / len(images)
        results[fmt] = records
        ref = results["pt"]
        same = sum(len(a["boxes"]) == len(b["boxes"]) for a, b in zip(ref, records, strict=True))
        ious = [v for a, b in zip(ref, records, strict=True)
                for v in matched_ious(b["boxes"], a["boxes"])]  # fmt: skip
        low = min(ious) if ious else float("nan")
        print(f"{fmt:12s} {ms:9.1f} {same:>6d}/{len(images):<4d} {low:8.3f}")


def audio(home: Path, root: Path) -> None:
    import torch
    from tests.support.audio import train_tiny_run

    from smalltrain.tasks.audio.use.generate import load_model
    from smalltrain.tasks.audio.use.preview import render_mels

    trained = train_tiny_run(root / "audio")
    _register(home, trained.model, "tones", "audio")
    export = export_model(home, "tones/m", "onnx")
    sys.path.insert(0, str(export.folder))
    import example  # the exported standalone example

    loaded = load_model(trained.model)
    model = example.Model(export.folder)
    n, rate = 8, loaded.config.sample_rate
    seconds = n * loaded.config.chunk_samples / rate
    rows = []
    for name, run in (
        ("torch (smalltrain generate)", lambda: render_mels(
            loaded.model.decode(loaded.prior.sample(n, torch.Generator().manual_seed(0))),
            loaded.spectrogram)),
        ("onnx example.py", lambda: model.generate(n, 0)),
    ):  # fmt: skip
        run()  # warm-up
        started = time.perf_counter()
        for _ in range(3):
            run()
        rows.append((name, (time.perf_counter() - started) / 3 * 1000 / seconds))
    print(f"\naudio: {n} sounds of {loaded.config.chunk_seconds:g} s at {rate} Hz")
    for name, ms in rows:
        print(f"{name:28s} {ms:7.1f} ms per second of audio")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        torch_threads()
        if PRETRAINED.is_file():
            detection(home)
        else:
            print(f"no shared data at {PRETRAINED.parent}: detection skipped")
        audio(home, Path(tmp))


def torch_threads() -> None:
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")


if __name__ == "__main__":
    main()
