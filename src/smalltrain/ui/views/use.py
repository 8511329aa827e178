"""The Use tab: audio models generate, reconstruct, interpolate and are evaluated beside PCA;
detection models find boxes on uploaded images, a folder of images or a webcam picture, with
counts per class per image and in total. Every action runs in a child process."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from smalltrain import tasks
from smalltrain.service.summary import evaluation_verdict
from smalltrain.ui.child.actions import PREDICT_FLOOR
from smalltrain.ui.child.calls import RECORDING
from smalltrain.ui.viewmodels import render
from smalltrain.ui.viewmodels.backend import Backend
from smalltrain.ui.viewmodels.detections import image_files, refilter
from smalltrain.ui.views.common import dataset_choices, guard

AUDIO_TYPES = sorted(tasks.AUDIO_EXTENSIONS)
IMAGE_TYPES = [".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"]


@dataclass
class UseTab:
    refresh: Any  # () -> outputs
    outputs: list[Any]


def _source_note(name: str | None, uploads: list[str] | None) -> str:
    """Which held-out sounds are used when a dataset is chosen and files are uploaded too."""
    if uploads and name:
        return (
            f"Evaluated the {len(uploads)} uploaded file(s); the chosen dataset {name!r} was "
            "not used (clear the upload to evaluate it)."
        )
    if uploads:
        return f"Evaluated the {len(uploads)} uploaded file(s)."
    return f"Evaluated dataset {name!r}." if name else ""


def evaluation_html(data: dict[str, Any]) -> str:
    """``evaluate``'s result as the CLI shows it: model beside PCA, then per file."""
    model, pca = data["model"], data["baseline_pca"]
    m = render.metric
    scores = render.table(
        ("", "size", m("sc", text="spectral convergence"), m("val/mel_l1_db", text="mel L1 (dB)")),
        [
            (
                "model",
                m("latent floats", text=f"{model['latent_floats']} latent floats"),
                f"{model['sc']:.4f}",
                f"{model['mel_l1_db']:.2f}",
            ),
            (
                m("PCA", text=f"PCA-{pca['k']}"),
                f"{pca['k']} components",
                f"{pca['sc']:.4f}",
                f"{pca['mel_l1_db']:.2f}",
            ),
        ],
        "st-eval",
    )
    warned = "".join(
        f'<div class="st-eval-warning">{render.message(w, "warn")}</div>'
        for w in data.get("warnings") or []
    )
    out = warned + f"<h4>Reconstruction of {data['chunks']} chunks (lower is better)</h4>{scores}"
    out += render.message(evaluation_verdict(data, marked=True), "info")
    files = data.get("files") or []
    trained = set(data.get("in_training") or [])
    if len(files) > 1:
        out += "<h4>Per file (mean over its chunks)</h4>" + render.table(
            ("file", "chunks", "model SC", "PCA SC", "model L1 dB", "PCA L1 dB"),
            [
                (
                    f["path"] + (" (trained on)" if f["path"] in trained else ""),
                    f.get("chunks", ""),
                    f"{f['sc']:.4f}",
                    f"{f.get('pca_sc', 0.0):.4f}",
                    f"{f['mel_l1_db']:.2f}",
                    f"{f.get('pca_mel_l1_db', 0.0):.2f}",
                )
                for f in files
            ],
        )
    gen = data.get("generation")
    if gen:
        out += render.message(
            f"generation: Fréchet distance of {gen['n']} prior samples {gen['frechet_model']:.1f} "
            f"(PCA Gaussian {gen['frechet_pca']:.1f}; lower is closer)",
            "info",
        )
    for s in data.get("skipped") or []:
        out += render.message(f"skipped {s['path']}: {s['reason']}", "warn")
    return f'<div class="st-evaluation">{out}</div>'


def sound_choices(backend: Backend) -> list[tuple[str, str]]:
    """``(dataset/file, absolute path)`` of the sounds of every audio dataset."""
    out = []
    for record in backend.datasets.list():
        if record.kind != "audio":
            continue
        try:
            report = backend.datasets.report(record.name)
        except Exception:  # a folder that vanished: skip it here, the Datasets tab says why
            continue
        for f in report.get("files", []):
            out.append((f"{record.name}/{f['rel']}", str(Path(record.path) / f["rel"])))
    return out


def _source(upload: str | None, chosen: str | None, what: str) -> str:
    if upload:
        return upload
    if chosen:
        return chosen
    raise ValueError(f"{what}: upload a sound or choose one from a dataset")


def _audio(backend: Backend) -> list[Any]:
    model = gr.Dropdown(
        label="Audio model (dataset/name; active models first)",
        choices=[],
        elem_id="use-audio-model",
    )
    with gr.Tab("Generate"):
        with gr.Row():
            n = gr.Slider(1, 16, value=4, step=1, label="How many sounds", elem_id="use-how-many")
            seed = gr.Number(value=0, precision=0, label="Seed (same seed, same sounds)")
            temperature = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="Temperature (spread)")
            duration = gr.Slider(
                0, 60, value=0, step=0.5, label="Duration (s; 0 = one chunk)",
                elem_id="use-duration",
            )  # fmt: skip
        go = gr.Button("Generate", variant="primary", elem_id="use-generate")
        out = gr.HTML(elem_id="use-generate-out")

        def generate(m: str, k: float, s: float | None, t: float, d: float | None) -> str:
            made = backend.use.generate(m, int(k), int(s or 0), float(t), float(d or 0))
            notes = "".join(render.message(n, "warn") for n in made.notes)
            data = made.data or {}
            return notes + render.sounds(
                made.folder,
                made.files,
                data.get("images") or [],
                data.get("zip") or "",
                data.get("seconds") or [],
            )

        go.click(guard(generate, 1, 0), [model, n, seed, temperature, duration], out)
    with gr.Tab("Reconstruct"):
        with gr.Row():
            # a recording arrives as a WAV file (Gradio's recorder encodes it in the browser),
            # an upload as it is: both go through the same reconstruct call
            up = gr.Audio(
                label="A sound: upload a file, or record one (microphone button below)",
                sources=["upload", "microphone"],
                type="filepath",
                buttons=["download"],
                elem_id="use-reconstruct-input",
            )
            pick = gr.Dropdown(label="…or a sound from a dataset", choices=[])
        recorded = gr.State("")  # RECORDING after a recording, "" after an upload
        up.stop_recording(lambda: RECORDING, None, recorded)
        up.upload(lambda: "", None, recorded)
        go = gr.Button("Reconstruct", variant="primary", elem_id="use-reconstruct")
        out = gr.HTML(elem_id="use-reconstruct-out")

        def rebuild(m: str, u: str | None, p: str | None, what: str) -> str:
            source = _source(u, p, "sound")
            return _ab(backend.use.reconstruct(m, source, what if u else ""))

        go.click(guard(rebuild, 1, 0), [model, up, pick, recorded], out)
        # a new sound: the last result (or error) was about the old one
        up.change(lambda: "", None, out)
        pick.change(lambda: "", None, out)
    with gr.Tab("Interpolate"):
        with gr.Row():
            up_a = gr.File(
                label="Sound A (upload)", file_types=AUDIO_TYPES, type="filepath", height=110
            )
            pick_a = gr.Dropdown(label="…or from a dataset", choices=[])
            up_b = gr.File(
                label="Sound B (upload)", file_types=AUDIO_TYPES, type="filepath", height=110
            )
            pick_b = gr.Dropdown(label="…or from a dataset", choices=[])
        steps = gr.Slider(2, 16, value=6, step=1, label="Steps from A to B")
        go = gr.Button("Interpolate", variant="primary")
        out = gr.HTML()

        def interpolate(
            m: str, ua: str | None, pa: str | None, ub: str | None, pb: str | None, k: float
        ) -> str:
            a, b = _source(ua, pa, "sound A"), _source(ub, pb, "sound B")
            return _play(backend.use.interpolate(m, a, b, int(k)))

        go.click(
            guard(interpolate, 1, 0),
            [model, up_a, pick_a, up_b, pick_b, steps],
            out,
        )
    with gr.Tab("Evaluate"):
        with gr.Row():
            held = gr.Dropdown(
                label="A registered held-out dataset", choices=[], elem_id="use-eval-dataset"
            )
            files = gr.File(
                elem_id="use-eval-files",
                label="…or upload held-out sounds",
                file_count="multiple",
                file_types=AUDIO_TYPES,
                type="filepath",
                height=110,
            )
            frechet = gr.Number(
                value=0, precision=0, label="Also sample N sounds (Fréchet distance)"
            )
        go = gr.Button("Evaluate", variant="primary", elem_id="use-evaluate")
        out = gr.HTML(elem_id="use-evaluate-out")

        def evaluate(m: str, name: str | None, uploads: list[str] | None, k: float) -> str:
            if uploads:
                folder = backend.use.stage_uploads(uploads, "evaluate")
            elif name:
                folder = Path(backend.datasets.get(name).path)
            else:
                raise ValueError("choose a held-out dataset or upload sounds")
            result = evaluation_html(backend.use.evaluate(m, folder, int(k or 0)).data)
            return render.message(_source_note(name, uploads), "info") + result

        go.click(guard(evaluate, 1, 0), [model, held, files, frechet], out)
    return [model, pick, pick_a, pick_b, held]


def _play(output: Any) -> str:
    notes = "".join(render.message(n, "warn") for n in output.notes)
    return notes + render.audio_list(output.folder, output.files)


def _ab(output: Any) -> str:
    """Reconstruct's A/B: the original (A) and the model's output (B), each named in full on
    its own line above a player that keeps its width."""
    labels = ["A · original", "B · model output"]
    data = output.data or {}
    players = render.audio_list(output.folder, output.files, labels, data.get("seconds") or [])
    images = data.get("images") or []
    return f'<div class="st-ab">{players}{render.images(output.folder, images)}</div>'


def _detect(backend: Backend) -> list[Any]:
    model = gr.Dropdown(
        label="Detection model (dataset/name; active models first)",
        choices=[],
        elem_id="use-detect-model",
    )
    images, folder, webcam = _detect_inputs()
    conf = gr.Slider(
        PREDICT_FLOOR, 1.0, value=0.25, step=0.01, elem_id="use-conf",
        label="Confidence threshold (filters the boxes found; the model does not run again)",
    )  # fmt: skip
    go = gr.Button("Detect", variant="primary", elem_id="use-detect")
    gallery = gr.HTML(elem_id="use-gallery")
    boxes = gr.HTML(elem_id="use-boxes")
    found = gr.State(None)  # the last run: its folder, every box down to the floor, skipped

    def detect(
        m: str, files: list[str] | None, tree: list[str] | None, cam: str | None, c: float
    ) -> list[Any]:
        chosen, skipped = detect_sources(files, tree, cam)
        out = backend.use.predict(m, chosen)  # once, every box down to the slider's floor
        run = {"folder": out.folder, "records": out.data, "skipped": skipped}
        return [*refilter(run, c), run]

    go.click(guard(detect, 3, 1), [model, images, folder, webcam, conf], [gallery, boxes, found])

    def slide(run: dict[str, Any] | None, c: float) -> list[Any]:
        """The boxes already found, filtered again: the model does not run."""
        return list(refilter(run, c)) if run else [gr.skip(), gr.skip()]

    conf.change(slide, [found, conf], [gallery, boxes], show_progress="hidden",
                trigger_mode="always_last")  # fmt: skip
    return [model]


def _detect_inputs() -> tuple[Any, Any, Any]:
    """Images, a folder of images, or a webcam picture: one run takes all that are given."""
    with gr.Row():
        images = gr.File(
            label="Images",
            file_count="multiple",
            file_types=IMAGE_TYPES,
            type="filepath",
            height=120,
            elem_id="use-images",
        )
        folder = gr.File(
            label="…or a folder of images",
            file_count="directory",
            type="filepath",
            height=120,
            elem_id="use-folder",
        )
        webcam = gr.Image(
            label="…or a webcam picture",
            sources=["webcam"],
            type="filepath",
            height=200,
            elem_id="use-webcam",
        )
    return images, folder, webcam


def detect_sources(
    files: list[str] | None, tree: list[str] | None, cam: str | None
) -> tuple[list[str], list[str]]:
    """The images to run on (uploads, the folder's images, the webcam picture) and the names of
    the folder's files that are not images."""
    from_folder, skipped = image_files(tree or [], IMAGE_TYPES)
    chosen = [*(files or []), *from_folder, *([cam] if cam else [])]
    if not chosen:
        raise ValueError(
            "no image: upload images, a folder with images, or take a webcam picture"
            + (f" (the folder holds no image: {', '.join(skipped[:3])}…)" if skipped else "")
        )
    return chosen, skipped


def build(backend: Backend) -> UseTab:
    """Lay out the tab and wire its events."""
    refresh = gr.Button("Refresh models and sounds", size="sm")
    with gr.Tabs():
        with gr.Tab("Audio"):
            audio_model, pick, pick_a, pick_b, held = _audio(backend)
        with gr.Tab("Detection"):
            (detect_model,) = _detect(backend)
    outputs = [audio_model, detect_model, pick, pick_a, pick_b, held]

    def fill() -> list[Any]:
        audio, detect = backend.use.choices("audio"), backend.use.choices("detect")
        sounds = sound_choices(backend)
        held_out = [c for c in dataset_choices(backend, "audio")]
        return [
            gr.update(choices=audio, value=audio[0] if audio else None),
            gr.update(choices=detect, value=detect[0] if detect else None),
            gr.update(choices=sounds, value=None),
            gr.update(choices=sounds, value=None),
            gr.update(choices=sounds, value=None),
            gr.update(choices=held_out, value=None),
        ]

    refresh.click(fill, None, outputs)
    return UseTab(refresh=fill, outputs=outputs)
