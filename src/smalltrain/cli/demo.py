"""``smalltrain demo``: make a small sound folder, train on it, generate from it."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from smalltrain.cli.common import console, handle_errors, home
from smalltrain.errors import TrainingError


@handle_errors
def demo_cmd(
    out: Path = typer.Option(Path("demo-output"), "--out", help="Where the demo writes its files."),
    epochs: int = typer.Option(6, "--epochs", min=1, help="Training epochs."),
) -> None:
    """Run the whole audio path end to end on a synthetic folder of sounds."""
    from smalltrain.cli.follow import follow_job, open_manager
    from smalltrain.engine.jobs import JobStatus
    from smalltrain.engine.manager import JobSpec
    from smalltrain.tasks.audio.evaluate import evaluate
    from smalltrain.tasks.audio.generate import interpolate, load_model, sample
    from smalltrain.tasks.audio.synth import make_sound_folder

    out = out.resolve()
    dataset = out / "sounds"
    files = make_sound_folder(dataset, n_files=12, seed=0)
    console.print(f"1. wrote {len(files)} synthetic sounds to {dataset}", highlight=False)

    manager = open_manager()
    overrides = {"epochs": epochs, "preview_every": 2, "checkpoint_every": 2}
    spec = JobSpec(
        dataset=str(dataset),
        preset="tiny",
        overrides=overrides,
        model_name=f"demo-{time.strftime('%Y%m%d-%H%M%S')}",
    )
    job_id = manager.start_training(spec)
    console.print(f"2. training job {job_id} (tiny preset, {epochs} epochs)", highlight=False)
    t0 = time.perf_counter()
    manager.start_scheduler(stop_after={job_id})
    job, _ = follow_job(manager, job_id)
    manager.stop_scheduler()
    console.print(
        f"   {job.status.value.lower()} in {time.perf_counter() - t0:.1f} s", highlight=False
    )
    if job.status is not JobStatus.COMPLETED:
        raise TrainingError(
            f"the demo job ended {job.status.value}: {job.error or job.status_reason}"
        )

    run_dir = Path(str(job.run_dir))
    loaded = load_model(run_dir)
    samples = sample(loaded, 4, out / "generated", seed=0)
    steps = interpolate(loaded, files[0], files[1], 5, out / "interpolated")
    model = manager.get_job(job_id).artifacts.get("model", "")
    console.print("3. generated sounds", highlight=False)
    held_out = out / "held-out"
    make_sound_folder(held_out, n_files=4, seed=99)
    scores = evaluate(run_dir, held_out)
    console.print(f"4. on 4 held-out sounds: {scores.headline()}", highlight=False)
    console.print(
        "\n".join(
            [
                "",
                f"dataset          {dataset}",
                f"run folder       {run_dir}",
                f"previews         {run_dir / 'previews'}",
                f"checkpoints      {run_dir / 'checkpoints'}",
                f"registered model {model}",
                f"samples          {samples[0].parent} ({len(samples)} WAVs)",
                f"interpolation    {steps[0].parent} ({len(steps)} WAVs)",
                f"job database     {home() / 'smalltrain.db'}",
                "",
                f"held-out sounds  {held_out}",
                "",
                f"next: smalltrain generate {run_dir} --n 8 --out my-sounds",
                f"      smalltrain evaluate {run_dir} {held_out}",
            ]
        ),
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_cmd)
