"""The UI's backend on a real home: a tiny audio model trained by the manager, then used the
way the Use and Models tabs use it (helpers in real child processes)."""

from __future__ import annotations

import shutil
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from smalltrain.engine.jobs import JobStatus
from smalltrain.service.manager import JobSpec, TrainingManager
from smalltrain.ui.viewmodels.backend import Backend
from tests.support.audio import AUDIO_TINY, make_audio_dataset

pytestmark = pytest.mark.slow  # trains a tiny model, then runs helpers that load it


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Backend, str, Path]]:
    root = tmp_path_factory.mktemp("backend")
    sounds = make_audio_dataset(root / "sounds")
    home = root / "home"
    backend = Backend(home, run_scheduler=False)
    backend.datasets.register("sounds", sounds)
    with TrainingManager.open(home, autostart=False) as manager:
        # two epochs and one preview sound: previews (Griffin-Lim) are the slow part on a CPU
        overrides = {**AUDIO_TINY, "epochs": 2, "preview_every": 2, "preview_count": 1}
        job_id = manager.start_training(
            JobSpec(dataset="sounds", preset="tiny", overrides=overrides)
        )
        manager.run_scheduler(until_idle=True)
        assert manager.get_job(job_id).status is JobStatus.COMPLETED
    yield backend, job_id, sounds
    backend.close()


def _wav_seconds(path: str | Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def test_the_job_view_shows_the_audio_charts_previews_and_log(
    trained: tuple[Backend, str, Path],
) -> None:
    backend, job_id, _ = trained
    view = backend.view(job_id)
    titles = [c.title for c in view.charts]
    assert titles[0] == "Loss"
    assert any("PCA" in t for t in titles)
    loss = view.charts[0].series
    assert [s.label for s in loss] == ["train", "validation"]
    assert len(loss[0].points) >= 3
    assert len(loss[1].points) == 2
    assert [epoch for epoch, _ in view.previews] == [2]
    assert any("COMPLETED" in line for line in view.log)
    assert backend.preview_file(job_id, view.previews[0][1][0]).is_file()
    # the "recon" preview names the validation file it reconstructs; its original is served
    recon = backend.preview_info(job_id)["recon"]
    assert (trained[2] / recon["file"]).is_file()
    assert recon["seconds"] > 0
    assert _wav_seconds(backend.preview_file(job_id, recon["original"])) == pytest.approx(
        recon["seconds"], abs=0.01
    )
    with pytest.raises(FileNotFoundError):
        backend.preview_file(job_id, "../../smalltrain.db")


def test_use_audio_generate_reconstruct_interpolate_evaluate(
    trained: tuple[Backend, str, Path], tmp_path: Path
) -> None:
    backend, _, sounds = trained
    (ref,) = backend.use.choices("audio")
    generated = backend.use.generate(ref, 2, seed=1, temperature=1.0)
    assert len(generated.files) == 2
    assert all(_wav_seconds(f) > 0.5 for f in generated.files)
    files = sorted(p for p in sounds.iterdir() if p.suffix == ".wav")
    rebuilt = backend.use.reconstruct(ref, files[0])
    assert [Path(f).name for f in rebuilt.files] == [
        files[0].name,
        f"{files[0].stem}-reconstructed.wav",
    ]
    assert rebuilt.data["seconds"][0] == pytest.approx(rebuilt.data["seconds"][1], abs=0.01)
    # AIFF does not play in a browser: the A side is the same samples as a WAV
    import soundfile as sf

    data, rate = sf.read(str(files[0]))
    sf.write(str(tmp_path / "take.aiff"), data, rate, format="AIFF")
    aiff = backend.use.reconstruct(ref, tmp_path / "take.aiff")
    assert Path(aiff.files[0]).name == "take.wav"
    assert sf.info(aiff.files[0]).format == "WAV"
    assert sf.info(aiff.files[0]).frames == len(data)
    walk = backend.use.interpolate(ref, files[0], files[1], 3)
    assert len(walk.files) == 3
    held_out = backend.use.stage_uploads(files[:2], "evaluate")
    scores = backend.use.evaluate(ref, held_out).data
    assert scores["model"]["sc"] > 0
    assert scores["baseline_pca"]["k"] >= 1
    assert backend.use.output_file(generated.folder, Path(generated.files[0]).name).is_file()
    with pytest.raises(FileNotFoundError):
        backend.use.output_file(generated.folder, "../../smalltrain.db")
    with pytest.raises(ValueError, match="between 1 and"):
        backend.use.generate(ref, 0, seed=0, temperature=1.0)


def test_models_warn_when_the_dataset_changed(
    trained: tuple[Backend, str, Path], tmp_path: Path
) -> None:
    backend, _, sounds = trained
    assert [row.changed for row in backend.model_rows("sounds")] == [""]
    extra = sounds / "extra.wav"
    shutil.copyfile(next(sounds.glob("*.wav")), extra)
    try:
        (changed,) = [row.changed for row in backend.model_rows("sounds")]
        assert changed == "files in the dataset folder changed since it was registered"
        backend.datasets.register("sounds", sounds)  # registered again: a new content fingerprint
        (changed,) = [row.changed for row in backend.model_rows("sounds")]
        assert changed.startswith("trained on 6 files")
        assert "the dataset is now 7 files" in changed
    finally:
        extra.unlink()
        backend.datasets.register("sounds", sounds)
