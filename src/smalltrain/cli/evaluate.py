"""``smalltrain evaluate``: a trained audio model beside its PCA baseline on a folder of sounds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from smalltrain.cli.common import JSON_HELP, console, handle_errors, print_json, warn
from smalltrain.cli.output import plural, print_table
from smalltrain.cli.refs import MODEL_HELP


def _wave_cells(wave: dict[str, Any] | None, side: str) -> list[str]:
    if not wave:
        return []
    return [f"{wave[side]['sc']:.4f}", f"{wave[side]['log_mag_db']:.2f}"]


def _print_scores(data: dict[str, Any]) -> None:
    model, pca, wave = data["model"], data["baseline_pca"], data.get("waveform")
    rows = [
        ["model", f"{model['latent_floats']} latent floats", f"{model['sc']:.4f}",
         f"{model['mel_l1_db']:.2f}", *_wave_cells(wave, "model")],
        [f"PCA-{pca['k']}", plural(pca['k'], 'component'), f"{pca['sc']:.4f}",
         f"{pca['mel_l1_db']:.2f}", *_wave_cells(wave, "baseline_pca")],
    ]  # fmt: skip
    headers = ["", "size", "mel SC", "mel L1 (dB)"]
    if wave:  # the rendered audio against the original, multi-resolution STFT
        headers += ["wave SC", "wave log-mag (dB)"]
        rows.append(["inversion", "the original", "-", "-", *_wave_cells(wave, "inversion")])
    title = f"Reconstruction of {data['chunks']} chunks (lower is better)"
    print_table(headers, rows, title=title, right=headers[1:])


def _print_files(files: list[dict[str, Any]]) -> None:
    headers = ["file", "chunks", "model SC", "PCA SC", "model L1 dB", "PCA L1 dB"]
    waves = all("wave" in f for f in files)
    if waves:
        headers += ["model wave SC", "inversion wave SC"]
    rows = [
        [f["path"], str(f.get("chunks", "")), f"{f['sc']:.4f}", f"{f.get('pca_sc', 0.0):.4f}",
         f"{f['mel_l1_db']:.2f}", f"{f.get('pca_mel_l1_db', 0.0):.2f}",
         *([f"{f['wave']['model']['sc']:.4f}", f"{f['wave']['inversion']['sc']:.4f}"]
           if waves else [])]
        for f in files
    ]  # fmt: skip
    title = "Per file (mel: mean over its chunks; wave: the whole file rendered)"
    print_table(headers, rows, title=title, right=headers[1:])


def _print_generation(gen: dict[str, Any]) -> None:
    console.print(
        f"generation: Fréchet distance of {gen['n']} prior samples to the folder "
        f"{gen['frechet_model']:.1f} (PCA Gaussian: {gen['frechet_pca']:.1f}; lower is closer)",
        highlight=False,
    )
    if "model" not in gen:
        return

    def cell(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    headers = ["sampler", "precision", "recall", "memorisation ratio", "near copies"]
    rows = [
        [name, cell(side["precision"], ".2f"), cell(side["recall"], ".2f"),
         cell(side["memorisation_ratio"], ".2f"), cell(side["near_copies"], ".0%")]
        for name, side in (("model prior", gen["model"]), ("PCA Gaussian", gen["baseline_pca"]))
    ]  # fmt: skip
    title = f"{gen['n']} generated sounds per sampler (see `evaluate --help`)"
    print_table(headers, rows, title=title, right=headers[1:])


def _print_report(data: dict[str, Any]) -> None:
    from smalltrain.service.summary import evaluation_verdict  # not at --help time

    _print_scores(data)
    console.print(evaluation_verdict(data), highlight=False)
    if len(data["files"]) > 1:
        _print_files(data["files"])
    wave = data.get("waveform")
    if wave:
        gap = wave["model"]["sc"] - wave["inversion"]["sc"]
        console.print(
            f"rendered audio: wave SC {wave['model']['sc']:.3f} for the model, "
            f"{wave['inversion']['sc']:.3f} for the inversion alone (the ceiling): "
            f"{gap:.3f} of it is the model's",
        )
    gen = data.get("generation")
    if gen:
        _print_generation(gen)
    if data["skipped"]:
        console.print(f"skipped {len(data['skipped'])} file(s):")
        for s in data["skipped"]:
            console.print(f"  - {s['path']}: {s['reason']}")
    for warning in data.get("warnings", []):
        warn(warning)


@handle_errors
def evaluate_command(
    model: str = typer.Argument(..., metavar="MODEL", help=MODEL_HELP),
    folder: Path = typer.Argument(
        ..., metavar="FOLDER", help="Audio to evaluate on (a folder or one file)."
    ),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
    generate: int = typer.Option(
        0,
        "--generate",
        min=0,
        help="Also sample N sounds from the model and from PCA's Gaussian and score them: "
        "Fréchet distance, precision (plausible), recall (varied) and memorisation (copies).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the generated samples."),
    device: str = typer.Option("cpu", "--device", help="Where the model runs (cpu, cuda...)."),
) -> None:
    """Score a model's reconstructions of FOLDER beside PCA of the same size."""
    from smalltrain.cli.audio import resolve_model_ref
    from smalltrain.tasks.audio.use.evaluate import evaluate  # keeps `smalltrain --help` fast

    ref = resolve_model_ref(model, "evaluate")
    result = evaluate(ref, folder, generate=generate, seed=seed, device=device)
    data = result.to_json_dict()
    if json_output:
        print_json(data)
    else:
        _print_report(data)


def register(app: typer.Typer) -> None:
    """Add the ``evaluate`` command to the CLI."""
    app.command("evaluate")(evaluate_command)
