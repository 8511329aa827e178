"""``smalltrain demo``: make a small sample folder, train on it, generate from it, score it.

The material is 40 synthetic drum one-shots for training and 10 more held out, the situation
of a user who trained on 40 of their recordings and kept 10 aside.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from smalltrain.cli.common import console, handle_errors, home
from smalltrain.errors import TrainingError


@handle_errors
def demo_cmd(
    out: Path = typer.Option(Path("demo-output"), "--out", help="Where the demo writes its files."),
    epochs: int = typer.Option(
        0, "--epochs", min=0, help="Training epochs; 0 = the tiny preset's (early stopping on)."
    ),
) -> None:
    """Run the whole audio path end to end on a synthetic folder of sounds."""
    from smalltrain.cli.follow import follow_job, open_manager
    from smalltrain.engine.jobs import JobStatus
    from smalltrain.service.manager import JobSpec
    from smalltrain.tasks.audio.data.synth import make_drum_kit
    from smalltrain.tasks.audio.presets import MIN_STEPS
    from smalltrain.tasks.audio.use.evaluate import evaluate
    from smalltrain.tasks.audio.use.generate import interpolate, load_model, sample

    out = out.resolve()
    dataset = out / "sounds"
    files = make_drum_kit(dataset, n_files=40, seed=0)
    console.print(f"1. wrote {len(files)} synthetic drum hits to {dataset}", highlight=False)

    manager = open_manager()
    overrides = {"epochs": epochs} if epochs else {}
    spec = JobSpec(
        dataset=str(dataset),
        preset="tiny",
        overrides=overrides,
        model_name=f"demo-{time.strftime('%Y%m%d-%H%M%S')}",
    )
    job_id = manager.start_training(spec)
    tiny = MIN_STEPS["tiny"]
    length = f"{epochs} epochs" if epochs else f"at least {tiny:,} steps, then stops on a plateau"
    console.print(f"2. training job {job_id} (tiny preset, {length})", highlight=False)
    t0 = time.perf_counter()
    manager.start_scheduler(stop_after={job_id})
    job, _, _ = follow_job(manager, job_id)
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
    make_drum_kit(held_out, n_files=10, seed=99)
    scores = evaluate(run_dir, held_out)
    console.print(f"4. on 10 held-out hits: {scores.headline()}", highlight=False)
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
                f"next: smalltrain generate {run_dir} -n 8 --out my-sounds",
                f"      smalltrain evaluate {run_dir} {held_out}",
            ]
        ),
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_cmd)
