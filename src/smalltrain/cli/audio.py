"""``inspect`` and the audio model commands: ``generate``, ``reconstruct``, ``interpolate``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from smalltrain.cli.common import JSON_HELP, console, handle_errors, print_json, say, warn
from smalltrain.cli.explore import (
    AT_HELP,
    CORNER_HELP,
    LIKE_HELP,
    SET_HELP,
    SLIDE_HELP,
    generate_explored,
)
from smalltrain.cli.output import plural
from smalltrain.cli.refs import MODEL_HELP, resolve_model

#: A generated sound whose peak is below this is reported as near-silent.
SILENT_PEAK_DBFS = -50.0


def resolve_model_ref(ref: str, command: str = "") -> Path:
    """The file or folder of an audio MODEL argument (see ``cli.refs``).

    Raises:
        ModelNotFound, WrongModelKind.
    """
    return resolve_model(ref, need="audio", command=command).path


def _dataset_path(ref: str) -> Path:
    """A dataset path, or the path of the registered dataset ``ref``."""
    path = Path(ref).expanduser()
    if path.exists():
        return path
    from smalltrain.cli.common import home
    from smalltrain.errors import DatasetNotFound
    from smalltrain.paths import db_path
    from smalltrain.store.datasets import DatasetStore
    from smalltrain.store.db import JobStore
    from smalltrain.store.names import looks_like_path

    store = DatasetStore(JobStore(db_path(home())))
    if looks_like_path(ref) and store.job_store.get_dataset(ref) is None:
        known = ", ".join(r.name for r in store.list()) or "none yet"
        raise DatasetNotFound(
            f"{ref}: no such file or folder, and no dataset is registered under that name "
            f"(registered: {known}). Check the path, or see: smalltrain datasets list"
        )
    return Path(store.get(ref).path)


@handle_errors
def inspect_cmd(
    dataset: str = typer.Argument(
        ...,
        metavar="DATASET",
        help="A folder of audio, a YOLO data.yaml (or its folder), or a registered dataset.",
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Check a dataset and print what training would use, skip, and why."""
    from smalltrain.tasks import detect_kind, get_task

    path = _dataset_path(dataset)
    kind = detect_kind(path)
    task = get_task(kind)
    report = task.inspect(path)
    config: Any = task.adaptive_config(report, "auto")
    notes_of = getattr(task, "config_notes", None)
    notes = notes_of(config, {}) if notes_of else []
    if as_json:
        print_json(
            {"kind": kind, "report": report.to_dict(), "config": config.to_dict(), "notes": notes}
        )
        return
    # the report's own text already holds every line once (the material line included)
    console.print(report.format() if hasattr(report, "format") else report.snapshot())
    console.print("\nThe auto preset would train with:", style="bold")
    if hasattr(config, "describe"):
        console.print(config.describe())
    else:
        for key, value in config.to_dict().items():
            if value != "":  # unset text fields (detection's dataset_name) say nothing here
                console.print(f"  {key}: {value}")
    for note in notes:
        console.print(f"note: {note}")
    console.print("Every field, its default and what it does: smalltrain config show " + kind)


def _peak_dbfs(path: Path) -> float:
    import numpy as np
    import soundfile as sf

    data, _ = sf.read(str(path), dtype="float32", always_2d=True)
    peak = float(np.max(np.abs(data))) if data.size else 0.0
    return 20 * float(np.log10(max(peak, 1e-10)))


def silence_warning(paths: list[Path]) -> str | None:
    """A warning when some generated sounds came out near-silent, else None."""
    levels = {p: _peak_dbfs(p) for p in paths}
    quiet = [p for p, level in levels.items() if level < SILENT_PEAK_DBFS]
    if not quiet:
        return None
    worst = min(levels[p] for p in quiet)
    return (
        f"{len(quiet)} of {len(paths)} samples are near-silent (peak down to {worst:.0f} dBFS, "
        f"under {SILENT_PEAK_DBFS:.0f}): {', '.join(p.name for p in quiet)}. The model may need "
        "more training (more epochs, or more sounds); --temperature 0 gives the typical sound"
    )


@handle_errors
def generate_cmd(
    model: str = typer.Argument(..., metavar="MODEL", help=MODEL_HELP),
    count: int = typer.Option(8, "-n", "--count", min=1, help="How many sounds to sample."),
    count_old: int | None = typer.Option(None, "--n", min=1, hidden=True),
    out: Path = typer.Option(
        Path("generated"), "--out", file_okay=False, help="Folder for the WAV files."
    ),
    seed: int = typer.Option(0, "--seed", help="Same seed, same sounds."),
    temperature: float = typer.Option(
        1.0,
        "--temperature",
        min=0.0,
        help="Spread around the typical sound (0 = the mean, 1 = as varied as the training set).",
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    duration: float | None = typer.Option(
        None,
        "--duration",
        help="Length of each sound in seconds (any length up to 600). One-shot material starts "
        "at an attack and decays; longer sounds follow on chunk after chunk. Default: one chunk.",
    ),
    like: Path | None = typer.Option(None, "--like", exists=True, dir_okay=False, help=LIKE_HELP),
    targets: list[str] = typer.Option([], "--set-descriptor", metavar="NAME=FACTOR", help=SET_HELP),
    slides: list[str] = typer.Option([], "--slide", metavar="NAME=AMOUNT", help=SLIDE_HELP),
    corners: list[Path] = typer.Option(
        [], "--corner", exists=True, dir_okay=False, metavar="FILE", help=CORNER_HELP
    ),
    at: str | None = typer.Option(None, "--at", metavar="U,V", help=AT_HELP),
) -> None:
    """Sample N new sounds from a trained audio model.

    Latents are drawn from the Gaussian fitted to the model's codes of its training sounds
    (stored with every exported model), so new sounds resemble the training material. With
    --duration, sounds come from the model's prior over sequences of chunks, overlap-added.
    With --like FILE or four --corner files, one sound is made from their codes instead
    (see `smalltrain explore` for the sliders).
    """
    if like is not None or corners or targets or slides or at is not None:
        generate_explored(model, out, like, targets, slides, corners, at, as_json)
        return
    from smalltrain.tasks.audio.use.generate import load_model, sample, sample_long

    loaded = load_model(resolve_model_ref(model, "generate"))
    warnings = []
    if not loaded.prior.fitted:
        warnings.append(
            f"{loaded.path.name} carries no fitted latent prior (a training checkpoint, not an "
            "exported model), so sounds are drawn from N(0, I) and resemble the training "
            "material less; give the run folder or registered model for its export/best.pt"
        )
    if duration is not None and loaded.sequence_prior.start_from == "independent chunks":
        warnings.append(
            f"{loaded.path.name} carries no sequence prior (a model trained before it existed, "
            "or a training checkpoint), so each chunk is drawn on its own: the sounds keep the "
            "texture but do not start, evolve and end as the training sounds"
        )
    number = count_old or count
    if duration is None:
        paths = sample(loaded, number, out, seed=seed, temperature=temperature)
    else:
        paths = sample_long(loaded, number, duration, out, seed=seed, temperature=temperature)
    quiet = silence_warning(paths)
    warnings += [quiet] if quiet else []
    for text in warnings:
        warn(text)
    if as_json:
        print_json({"model": str(loaded.path), "out": str(out), "files": [str(p) for p in paths],
                    "duration_s": duration, "warnings": warnings})  # fmt: skip
        return
    length = "" if duration is None else f" of {duration:g} s"
    console.print(f"wrote {plural(len(paths), 'sound')}{length} to {out}")


@handle_errors
def reconstruct_cmd(
    model: str = typer.Argument(..., metavar="MODEL", help=MODEL_HELP),
    audio: Path = typer.Argument(..., exists=True, dir_okay=False, help="The file to rebuild."),
    out: Path = typer.Option(
        Path("reconstructed.wav"), "--out", dir_okay=False, help="Output WAV file."
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Encode a sound and decode it again: hear what the model keeps."""
    from smalltrain.tasks.audio.use.generate import check_sound, load_model, reconstruct

    check_sound(audio)  # as the web UI does: a click or silence is refused, saying why
    loaded = load_model(resolve_model_ref(model, "reconstruct"))
    path = reconstruct(loaded, audio, out)
    if as_json:
        print_json({"model": str(loaded.path), "file": str(path)})
        return
    console.print(f"wrote {path}")


def _first_chunk_note(chunk_s: float, files: list[Path]) -> str | None:
    """Say that only the first chunk of each file is used, when a file is longer than that."""
    import soundfile as sf

    longer = []
    for f in files:
        try:
            seconds = float(sf.info(str(f)).duration)
        except RuntimeError:
            continue  # unreadable: interpolate itself reports it
        if seconds > chunk_s + 1e-3:
            longer.append(f"{f.name} is {seconds:.1f} s")
    if not longer:
        return None
    return (
        f"interpolate uses the first {chunk_s:g} s of each file (the model's chunk; "
        f"{', '.join(longer)}); every step is {chunk_s:g} s long"
    )


@handle_errors
def interpolate_cmd(
    model: str = typer.Argument(..., metavar="MODEL", help=MODEL_HELP),
    file_a: Path = typer.Argument(..., exists=True, dir_okay=False, metavar="A"),
    file_b: Path = typer.Argument(..., exists=True, dir_okay=False, metavar="B"),
    steps: int = typer.Option(8, "--steps", min=2, help="Points from A to B, both included."),
    out: Path = typer.Option(
        Path("interpolated"), "--out", file_okay=False, help="Folder for the WAV files."
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Walk the latent space from the start of one sound to the start of another in K steps.

    The model codes one chunk (1 s by default) at a time: the walk goes from A's first chunk
    to B's, and says so when a file is longer.
    """
    from smalltrain.tasks.audio.use.generate import interpolate, load_model

    loaded = load_model(resolve_model_ref(model, "interpolate"))
    note = _first_chunk_note(float(loaded.config.chunk_seconds), [file_a, file_b])
    paths = interpolate(loaded, file_a, file_b, steps, out)
    if note:
        say(f"note: {note}", json_mode=as_json)
    if as_json:
        print_json({"model": str(loaded.path), "out": str(out), "files": [str(p) for p in paths],
                    "note": note})  # fmt: skip
        return
    console.print(f"wrote {plural(len(paths), 'sound')} to {out}")


def register(app: typer.Typer) -> None:
    """Add these commands to the main app."""
    app.command("inspect")(inspect_cmd)
    app.command("generate")(generate_cmd)
    app.command("reconstruct")(reconstruct_cmd)
    app.command("interpolate")(interpolate_cmd)
