"""What the UI's child processes run (see ``pool``): every call that inspects data, builds a
task config, or uses a model. Arguments and results are plain values (paths as strings).

Importing this module is light; each function imports the task it needs. A child keeps its
stores open and its inspections cached between calls (it stays warm while the UI is used).
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

from smalltrain import paths, tasks
from smalltrain.errors import TrainingError

__all__ = [
    "RECORDING",
    "check_weights",
    "evaluate",
    "generate",
    "gpus",
    "interpolate",
    "plan",
    "predict",
    "reconstruct",
    "register",
    "train_form",
    "validate",
    "validate_model",
]

#: What the Use tab calls a sound recorded from the microphone (in errors and file names).
RECORDING = "the recording"

#: Audio formats browsers do not play (Chromium, Firefox): shown as WAV copies.
UNPLAYABLE = (".aif", ".aiff", ".aifc")

#: Report entries the UI does not show; the file list is cut to what it needs.
_FILE_KEYS = ("rel", "duration_s", "sample_rate", "channels")


@functools.lru_cache(maxsize=4)
def _stores(home: str) -> tuple[Any, Any]:
    from smalltrain.store import DatasetStore, JobStore, ModelStore

    root = Path(home)
    jobs = JobStore(paths.db_path(root))
    return DatasetStore(jobs, cache_root=paths.cache_dir(root)), ModelStore(paths.models_dir(root))


def _task(kind: str) -> Any:
    if kind not in tasks.task_names():  # a plugin the server knows from $SMALLTRAIN_EXTRA_TASKS
        tasks.register_extra_tasks()
    try:
        return tasks.get_task(kind)
    except KeyError as exc:
        raise TrainingError(str(exc.args[0])) from None


_REPORTS: dict[tuple[str, str, str], Any] = {}


def _inspect(kind: str, path: Path) -> Any:
    """The task's report of ``path``, cached while the folder's quick fingerprint holds."""
    from smalltrain.store.datasets import quick_fingerprint

    key = (kind, str(path), quick_fingerprint(path))
    if key not in _REPORTS:
        if len(_REPORTS) > 16:
            _REPORTS.clear()
        _REPORTS[key] = _task(kind).inspect(path)
    return _REPORTS[key]


def report_view(report: Any) -> dict[str, Any]:
    """A report's dict for the UI: everything but per-image records; files cut to a few keys."""
    data = dict(report.to_dict())
    if isinstance(data.get("files"), list):
        data["files"] = [{k: f.get(k) for k in _FILE_KEYS} for f in data["files"]]
    data["text"] = report.format() if hasattr(report, "format") else report.snapshot()
    return data


def register(
    home: str, name: str, path: str, kind: str | None = None, replace: bool = False
) -> dict[str, Any]:
    """Inspect ``path`` and register it as dataset ``name``; return the record and report.
    A name registered for another folder is refused (``DatasetExists``) unless ``replace``."""
    from smalltrain.service.datasets import REMOTE_REMEDY, refuse_other_folder, register_dataset

    datasets, _ = _stores(home)
    target = Path(path).expanduser().resolve()
    if not replace:  # before the inspection, which may take a while
        refuse_other_folder(datasets, name, target, REMOTE_REMEDY)
    kind = kind or tasks.detect_kind(target)
    report = _inspect(kind, target)
    record = register_dataset(datasets, name, target, kind, report=report, replace=replace)
    return {"record": record.to_dict(), "report": report_view(report)}


def inspect(home: str, name: str) -> dict[str, Any]:
    """The full report of the registered dataset ``name`` as it is on disk now."""
    datasets, _ = _stores(home)
    record = datasets.get(name)
    return report_view(_inspect(record.kind, Path(record.path)))


def train_form(home: str, dataset: str, preset: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The train form of a registered dataset: its task, the preset's config and the config
    with the user's ``overrides`` applied (validated by the task; ConfigError otherwise)."""
    from smalltrain.service.planning import preset_plan, start_line

    datasets, _ = _stores(home)
    record = datasets.get(dataset)
    task = _task(record.kind)
    report = _inspect(record.kind, Path(record.path))
    # the preset plans around the weights chosen (a .pt: fine-tuning; a .yaml: from scratch)
    planned = {k: overrides[k] for k in getattr(task, "weights_fields", ()) if k in overrides}
    base = preset_plan(task, report, "auto", preset, planned)
    config = preset_plan(task, report, "auto", preset, overrides)
    # what the preset chose; the view describes a config without ``describe`` from its fields
    describe = base.describe() if hasattr(base, "describe") else ""
    return {
        "task": record.kind,
        "preset": preset,
        "preset_config": base.to_dict(),
        "config": config.to_dict(),
        "describe": describe,
        "snapshot": report.snapshot(),
        "material": getattr(report, "material_summary", ""),
        "start_line": start_line(config.to_dict()),
        "planned": planned,  # the user's fields the preset planned around (kept when saved)
    }


def check_form(
    home: str, kind: str, base: dict[str, Any], changes: dict[str, Any], model_name: str = ""
) -> dict[str, Any]:
    """Every error of the train form at once, by field: each change is checked on its own
    against ``base`` (the preset's config), then all together (rules across fields), then the
    weights rule and the model name. ``{"config": dict | None, "errors": {field: message},
    "start_line": str}``; ``config`` is None while any field is wrong."""
    from smalltrain.engine.config import apply_overrides
    from smalltrain.errors import (
        CheckpointError,
        ConfigError,
        InvalidName,
        WeightsNotFound,
        WrongModelKind,
    )
    from smalltrain.service.planning import start_line
    from smalltrain.service.weights import check_weights as rule
    from smalltrain.store.names import validate_name

    task = _task(kind)
    weights = tuple(getattr(task, "weights_fields", ()))
    start = task.config_from_dict(base)
    errors: dict[str, str] = {}
    config = None
    try:
        config = apply_overrides(start, changes).to_dict()
    except ConfigError as together:
        # which fields are wrong on their own (a rule across fields names its own field)
        for key, value in changes.items():
            try:
                apply_overrides(start, {key: value})
            except ConfigError as e:
                errors.setdefault(e.field or key, str(e))
        if not errors:
            errors[together.field or "config"] = str(together)
    if config is not None:
        try:
            rule(task, config, Path(home), "remote")
        except (ConfigError, WeightsNotFound, CheckpointError, WrongModelKind) as e:
            field = getattr(e, "field", None) or (weights[0] if weights else "config")
            errors[field], config = str(e), None
    if model_name.strip():
        try:
            validate_name(model_name.strip(), "model name")
        except InvalidName as e:
            errors["model_name"] = str(e)
    return {
        "config": None if errors else config,
        "errors": errors,
        "start_line": start_line(config) if config and not errors else "",
    }


def validate(kind: str, base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` (a valid config dict, e.g. the preset's) with ``changes`` applied at once and
    checked by the task's own config class; the result's dict. String values are converted to
    each field's type, as ``--set`` does.

    Raises:
        ConfigError: naming the field, the value and the rule.
    """
    from smalltrain.engine.config import apply_overrides

    config = apply_overrides(_task(kind).config_from_dict(base), changes)
    return dict(config.to_dict())


def check_weights(home: str, kind: str, config: dict[str, Any]) -> None:
    """The weights rule for the web UI (``service.weights.check_weights``, remote), so the form
    says at once what Start would refuse: weights that are not registered, or a path.

    Raises:
        ConfigError: naming the field and how to register weights.
    """
    from smalltrain.service.weights import check_weights as rule

    rule(_task(kind), config, Path(home), "remote")


def plan(home: str, spec: dict[str, Any], origin: str = "remote") -> dict[str, Any]:
    """``planning.plan_job`` for a ``JobSpec.to_dict()`` (inspect the dataset, validate the
    config, the weights rule for ``origin``, the name): the job's dict, which the server's
    ``TrainingManager.start_training`` queues (its ``planner``)."""
    from smalltrain.service.jobspec import JobSpec
    from smalltrain.service.planning import plan_job

    datasets, models = _stores(home)
    tasks.register_extra_tasks()  # plugins (and the tests' toy task) this child has not seen

    def cached(task: Any, path: Path) -> Any:
        return _inspect(task.name, path)

    job = plan_job(
        JobSpec.from_dict(spec),
        datasets,
        models,
        Path(home),
        inspect=cached,
        origin="local" if origin == "local" else "remote",
    )
    return job.to_dict()


def _out(folder: str) -> Path:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    return out


def generate(
    model: str,
    n: int,
    seed: int,
    temperature: float,
    out_dir: str,
    duration: float = 0.0,
    home: str = "",
    prefix: str = "",
) -> dict[str, Any]:
    """Sample ``n`` sounds from an audio model into ``out_dir``: one chunk each, or
    ``duration`` seconds each from the model's sequence prior (``generate --duration``);
    with ``home``, each gets its spectrogram (``images``); with ``prefix``, the files are
    named ``<prefix>-000.wav``… (downloads from different models and seeds never clash)."""
    from smalltrain.tasks.audio.use.generate import load_model, sample, sample_long

    loaded = load_model(model)
    if duration > 0:
        files = sample_long(loaded, n, duration, _out(out_dir), seed=seed, temperature=temperature)
    else:
        files = sample(loaded, n, _out(out_dir), seed=seed, temperature=temperature)
    independent = loaded.sequence_prior.start_from == "independent chunks"
    if prefix:
        files = [f.rename(f.with_name(f"{prefix}-{i:03d}{f.suffix}")) for i, f in enumerate(files)]
    images = [_spectrogram(Path(f), home, Path(f).name) for f in files] if home else []
    return {
        "files": [str(f) for f in files],
        "seconds": _seconds(files),
        "images": [str(i) for i in images],
        "prior_fitted": bool(loaded.prior.fitted),
        "sequence_prior": not independent,
    }


def reconstruct(
    model: str, audio: str, out_dir: str, home: str = "", what: str = ""
) -> dict[str, Any]:
    """Encode and decode one file (an upload, a recording or a dataset's file: any rate and
    channel count, checked by ``check_sound`` first, ``what`` naming it in the error); the
    original is copied beside the result for listening, and (with ``home``) each gets its
    spectrogram, for an A/B comparison."""
    import shutil

    from smalltrain.tasks.audio.use.generate import check_sound, load_model
    from smalltrain.tasks.audio.use.generate import reconstruct as rebuild

    check_sound(audio, what)
    out = _out(out_dir)
    source = Path(audio)
    stem = "recording" if what == RECORDING else source.stem  # the browser calls it audio.wav
    if source.suffix.lower() in UNPLAYABLE:  # the A side must play: the same samples as a WAV
        import soundfile as sf

        data, rate = sf.read(str(source), always_2d=True)
        original = out / f"{stem}.wav"
        sf.write(str(original), data, rate, subtype="PCM_24")
    else:
        original = out / f"{stem}{source.suffix.lower()}"
        shutil.copyfile(source, original)
    result = rebuild(load_model(model), source, out / f"{stem}-reconstructed.wav")
    files = [original, result]
    images = (
        [
            _spectrogram(f, home, title)
            for f, title in zip(files, ("A · original", "B · model output"), strict=True)
        ]
        if home
        else []
    )
    return {
        "files": [str(f) for f in files],
        "seconds": _seconds(files),
        "images": [str(i) for i in images],
    }


def _seconds(files: list[Path]) -> list[float]:
    """Each sound's length: the page shows it (a browser's player reads 0:00 for 0.9 s)."""
    import soundfile as sf

    return [round(float(sf.info(str(f)).duration), 3) for f in files]


def _spectrogram(wav: Path, home: str, title: str) -> Path:
    from smalltrain.engine.plots import plot_spectrogram
    from smalltrain.tasks.audio.data.io import TARGET_SR, load_audio

    return plot_spectrogram(
        load_audio(wav), TARGET_SR, wav.with_name(f"{wav.stem}-spectrogram.png"), title, Path(home)
    )


def interpolate(model: str, a: str, b: str, steps: int, out_dir: str) -> dict[str, Any]:
    """Decode ``steps`` points from sound ``a`` to sound ``b``."""
    from smalltrain.tasks.audio.use.generate import interpolate as walk
    from smalltrain.tasks.audio.use.generate import load_model

    files = walk(load_model(model), a, b, steps, _out(out_dir))
    return {"files": [str(f) for f in files]}


def evaluate(model: str, folder: str, generate: int = 0, seed: int = 0) -> dict[str, Any]:
    """Score a model's reconstructions of ``folder`` beside PCA of the same size."""
    from smalltrain.tasks.audio.use.evaluate import evaluate as score

    started = time.monotonic()
    data = dict(score(model, folder, generate=generate, seed=seed, device="cpu").to_json_dict())
    data["seconds"] = time.monotonic() - started
    return data


def predict(
    home: str, weights: str, images: list[str], out_dir: str | None, conf: float
) -> list[Any]:
    """Detect objects in ``images`` with ``weights``; annotated copies go to ``out_dir`` (None:
    no files, the records only)."""
    from smalltrain.tasks.detect.predict import predict as detect

    out = _out(out_dir) if out_dir else None
    return list(detect(weights, images, out, conf=conf, home=Path(home)))


def validate_model(home: str, model: str) -> dict[str, Any]:
    """Compute a registered detection model's results into its folder (``smalltrain val``)."""
    from smalltrain.service.detection_results import validate_detector

    metrics = validate_detector(Path(home), model)
    return {"folder": metrics["folder"]}


def gpus() -> list[dict[str, Any]]:
    """The GPUs this machine shows to torch (for a server without NVML)."""
    from dataclasses import asdict

    from smalltrain.engine.resources import gpu_snapshot

    return [asdict(g) for g in gpu_snapshot()]
