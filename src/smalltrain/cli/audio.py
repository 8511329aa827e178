"""``inspect`` and the audio model commands: ``generate``, ``reconstruct``, ``interpolate``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from smalltrain.cli.common import console, find_registered_model, handle_errors, print_json
from smalltrain.errors import ModelNotFound
from smalltrain.tasks import detect_kind, get_task


def resolve_model_ref(ref: str) -> Path:
    """A run dir, checkpoint or model folder path; or a registered model "DATASET/NAME" or "NAME".

    Raises:
        ModelNotFound: ``ref`` is neither an existing path nor a registered model.
    """
    path = Path(ref).expanduser()
    if path.exists():
        return path
    if path.is_absolute() or ref.count("/") > 1 or ref.startswith("."):
        raise ModelNotFound(
            f"{ref}: no such file or folder. Give a run folder, a .pt file, or a registered "
            "model as DATASET/NAME (list them with `smalltrain models list`)."
        )
    return Path(find_registered_model(ref).path)


@handle_errors
def inspect_cmd(
    path: Path = typer.Argument(
        ..., help="A folder of audio, or a YOLO data.yaml (or its folder)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Check a dataset and print what training would use, skip, and why."""
    kind = detect_kind(path)
    task = get_task(kind)
    report = task.inspect(path)
    config: Any = task.adaptive_config(report, "auto")
    if as_json:
        print_json({"kind": kind, "report": report.to_dict(), "config": config.to_dict()})
        return
    text = report.format() if hasattr(report, "format") else report.snapshot()
    console.print(text, highlight=False, markup=False)
    material = getattr(report, "material_summary", None)
    if material:
        console.print(f"  material:       {material}", highlight=False, markup=False)
    console.print("\nThe auto preset would train with:", style="bold")
    if hasattr(config, "describe"):
        console.print(config.describe(), highlight=False, markup=False)
    else:
        for key, value in config.to_dict().items():
            console.print(f"  {key}: {value}", highlight=False, markup=False)


@handle_errors
def generate_cmd(
    model: str = typer.Argument(..., help="Run folder, checkpoint (.pt) or registered model."),
    n: int = typer.Option(8, "--n", min=1, help="How many sounds to sample."),
    out: Path = typer.Option(Path("generated"), "--out", help="Folder for the WAV files."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same sounds."),
    temperature: float = typer.Option(
        1.0,
        "--temperature",
        min=0.0,
        help="Spread around the typical sound (0 = the mean, 1 = as varied as the training set).",
    ),
    duration: float | None = typer.Option(
        None,
        "--duration",
        help="Length of each sound in seconds (any length up to 600). One-shot material starts "
        "at an attack and decays; longer sounds follow on chunk after chunk. Default: one chunk.",
    ),
) -> None:
    """Sample N new sounds from a trained audio model.

    Latents are drawn from the Gaussian fitted to the model's codes of its training sounds
    (stored with every exported model), so new sounds resemble the training material. With
    --duration, sounds come from the model's prior over sequences of chunks, overlap-added.
    """
    from smalltrain.tasks.audio.generate import load_model, sample, sample_long

    loaded = load_model(resolve_model_ref(model))
    if not loaded.prior.fitted:
        console.print(
            f"warning: {loaded.path.name} carries no fitted latent prior (a training checkpoint, "
            "not an exported model), so sounds are drawn from N(0, I) and resemble the training "
            "material less; give the run folder or registered model for its export/best.pt",
            highlight=False,
        )
    if duration is None:
        paths = sample(loaded, n, out, seed=seed, temperature=temperature)
    else:
        if loaded.sequence_prior.start_from == "independent chunks":
            console.print(
                f"warning: {loaded.path.name} carries no sequence prior (a model trained before "
                "it existed, or a training checkpoint), so each chunk is drawn on its own: the "
                "sounds keep the texture but do not start, evolve and end as the training sounds",
                highlight=False,
            )
        paths = sample_long(loaded, n, duration, out, seed=seed, temperature=temperature)
    length = "" if duration is None else f" of {duration:g} s"
    console.print(f"wrote {len(paths)} sounds{length} to {out}", highlight=False)


@handle_errors
def reconstruct_cmd(
    model: str = typer.Argument(..., help="Run folder, checkpoint (.pt) or registered model."),
    audio: Path = typer.Argument(..., exists=True, dir_okay=False, help="The file to rebuild."),
    out: Path = typer.Option(Path("reconstructed.wav"), "--out", help="Output WAV file."),
) -> None:
    """Encode a sound and decode it again: hear what the model keeps."""
    from smalltrain.tasks.audio.generate import load_model, reconstruct

    path = reconstruct(load_model(resolve_model_ref(model)), audio, out)
    console.print(f"wrote {path}", highlight=False)


@handle_errors
def interpolate_cmd(
    model: str = typer.Argument(..., help="Run folder, checkpoint (.pt) or registered model."),
    file_a: Path = typer.Argument(..., exists=True, dir_okay=False),
    file_b: Path = typer.Argument(..., exists=True, dir_okay=False),
    steps: int = typer.Option(8, "--steps", min=2, help="Points from A to B, both included."),
    out: Path = typer.Option(Path("interpolated"), "--out", help="Folder for the WAV files."),
) -> None:
    """Walk the latent space from one sound to another in K steps."""
    from smalltrain.tasks.audio.generate import interpolate, load_model

    paths = interpolate(load_model(resolve_model_ref(model)), file_a, file_b, steps, out)
    console.print(f"wrote {len(paths)} sounds to {out}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add these commands to the main app."""
    app.command("inspect")(inspect_cmd)
    app.command("generate")(generate_cmd)
    app.command("reconstruct")(reconstruct_cmd)
    app.command("interpolate")(interpolate_cmd)
