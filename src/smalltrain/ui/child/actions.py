"""Using trained models from the UI: generate, reconstruct, interpolate, evaluate (audio) and
predict (detection). Each action runs in a child process and writes into its own output folder
``<home>/ui/outputs/<time>-<action>-<random>``; the newest ``KEEP_OUTPUTS`` folders are kept.
"""

from __future__ import annotations

import re
import secrets
import shutil
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smalltrain.errors import DatasetError, ModelNotFound
from smalltrain.store.models import ModelInfo, ModelStore
from smalltrain.tasks import kind_words
from smalltrain.ui.child import calls
from smalltrain.ui.child.pool import ChildPool
from smalltrain.ui.env import UIPaths

__all__ = ["KEEP_OUTPUTS", "PREDICT_FLOOR", "Output", "UseUI", "contained", "zip_files"]

KEEP_OUTPUTS = 50
MAX_SOUNDS = 64
#: The longest sound Generate makes, in seconds (the task's own limit is 600).
MAX_DURATION_S = 60
#: The lowest confidence a detection run keeps (the Use tab's slider starts there).
PREDICT_FLOOR = 0.01


def _safe_name(name: str) -> str:
    """A file name without characters a URL or a shell would trip on."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[-80:] or "image"


@dataclass
class Output:
    """What one action made: its folder's name (for URLs), the files, and extra data."""

    folder: str
    files: list[str] = field(default_factory=list)
    data: Any = None
    notes: list[str] = field(default_factory=list)


class UseUI:
    """The "use" actions shared by the UI and the API."""

    def __init__(self, models: ModelStore, ui: UIPaths, pool: ChildPool) -> None:
        self.models = models
        self.ui = ui
        self.pool = pool
        self.predict_calls = 0  # detection model runs (the confidence slider makes none)

    def model(self, ref: str, task: str) -> ModelInfo:
        """The registered model ``"DATASET/NAME"`` of ``task``.

        Raises:
            ModelNotFound: none chosen (none trained yet), no such model, or one of another
                task.
        """
        if not ref:
            what = kind_words(task)
            raise ModelNotFound(
                f"No {task} model chosen. Choose one above; if the list is empty, train "
                f"{what} model first (Train tab), or press Refresh models and sounds"
            )
        dataset, _, name = ref.partition("/")
        if not dataset or not name:
            raise ModelNotFound(f"{ref!r}: choose a model as DATASET/NAME")
        info = self.models.get(dataset, name)
        if info.task and info.task != task:
            raise ModelNotFound(f"{ref} is a {info.task} model; choose a {task} model")
        return info

    def choices(self, task: str) -> list[str]:
        """``DATASET/NAME`` of every model of ``task``, active models first."""
        found = [m for m in self.models.list() if (m.task or task) == task]
        found.sort(key=lambda m: (not m.active, m.dataset, m.created))
        return [f"{m.dataset}/{m.name}" for m in found]

    def _new_output(self, action: str) -> tuple[str, Path]:
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{action}-{secrets.token_hex(3)}"
        folder = self.ui.outputs / name
        folder.mkdir(parents=True)
        old = sorted(p for p in self.ui.outputs.iterdir() if p.is_dir())
        for stale in old[:-KEEP_OUTPUTS]:
            shutil.rmtree(stale, ignore_errors=True)
        return name, folder

    def generate(
        self, ref: str, n: int, seed: int, temperature: float, duration: float = 0.0
    ) -> Output:
        """Sample ``n`` new sounds from an audio model (``duration`` > 0: that many seconds
        each, as ``smalltrain generate --duration``)."""
        if not 1 <= int(n) <= MAX_SOUNDS:
            raise ValueError(f"n={n}: choose between 1 and {MAX_SOUNDS} sounds")
        if not 0 <= float(duration) <= MAX_DURATION_S:
            raise ValueError(f"duration {duration} s: choose 0 (one chunk) to {MAX_DURATION_S} s")
        model = self.model(ref, "audio")
        name, folder = self._new_output("generate")
        stem = safe_name(f"{model.dataset}-{model.name}-seed{seed}")
        result = self.pool.call(
            calls.generate, str(model.path), int(n), int(seed), float(temperature), str(folder),
            float(duration), str(self.ui.home), stem,
        )  # fmt: skip
        archive = zip_files(folder, result["files"], stem)
        data = {"images": result["images"], "seconds": result["seconds"], "zip": archive.name}
        out = Output(name, result["files"], data)
        if not result["prior_fitted"]:
            out.notes.append("this model has no fitted prior: sounds are drawn from N(0, I)")
        if duration and not result.get("sequence_prior", True):
            out.notes.append(
                "this model has no sequence prior: each chunk is drawn on its own, so the "
                "sounds keep the texture but do not start, evolve and end as the training sounds"
            )
        return out

    def reconstruct(self, ref: str, audio: str | Path, what: str = "") -> Output:
        """Encode and decode one sound (uploaded, recorded or from a dataset; ``what`` names it
        in errors, e.g. "the recording"); the original and the result.

        Raises:
            DatasetError: the sound is unreadable, shorter than 0.1 s or silent.
        """
        model = self.model(ref, "audio")
        name, folder = self._new_output("reconstruct")
        result = self.pool.call(
            calls.reconstruct, str(model.path), str(audio), str(folder), str(self.ui.home), what
        )
        data = {"images": result.get("images", []), "seconds": result.get("seconds", [])}
        return Output(name, result["files"], data=data)

    def interpolate(self, ref: str, a: str | Path, b: str | Path, steps: int) -> Output:
        """Sounds on the way from ``a`` to ``b`` in the model's latent space."""
        if not 2 <= int(steps) <= MAX_SOUNDS:
            raise ValueError(f"steps={steps}: choose between 2 and {MAX_SOUNDS}")
        model = self.model(ref, "audio")
        name, folder = self._new_output("interpolate")
        result = self.pool.call(
            calls.interpolate, str(model.path), str(a), str(b), int(steps), str(folder)
        )
        return Output(name, result["files"])

    def evaluate(self, ref: str, folder: str | Path, generate: int = 0) -> Output:
        """The model beside PCA of its size on a held-out folder (``evaluate``'s JSON)."""
        model = self.model(ref, "audio")
        if not Path(folder).exists():
            raise DatasetError(f"{folder}: no such folder or file on the server")
        data = self.pool.call(calls.evaluate, str(model.path), str(folder), int(generate))
        return Output("", [], data)

    def stage_uploads(self, files: Sequence[str | Path], action: str) -> Path:
        """Copy uploaded files into a fresh folder under ``<home>/ui/uploads`` (one action's
        input, e.g. a held-out set to evaluate); the newest ``KEEP_OUTPUTS`` are kept."""
        if not files:
            raise DatasetError("no files uploaded")
        folder = (
            self.ui.uploads / f"{time.strftime('%Y%m%d-%H%M%S')}-{action}-{secrets.token_hex(3)}"
        )
        folder.mkdir(parents=True)
        for f in files:
            shutil.copyfile(f, folder / Path(f).name)
        old = sorted(p for p in self.ui.uploads.iterdir() if p.is_dir())
        for stale in old[:-KEEP_OUTPUTS]:
            shutil.rmtree(stale, ignore_errors=True)
        return folder

    def predict(
        self, ref: str, images: Sequence[str | Path], conf: float = PREDICT_FLOOR
    ) -> Output:
        """Boxes on images with a detection model, every box down to ``conf`` (the confidence
        slider's lowest value by default, so the slider filters them later without running
        the model again). The images are copied into the output folder (``NNN-<name>``, each
        record's ``file``; its ``image`` is the name the user knows) for the page to draw the
        boxes on; ``predict_calls`` counts the model runs."""
        if not images:
            raise DatasetError("no image uploaded")
        model = self.model(ref, "detect")
        name, folder = self._new_output("predict")
        staged = []
        for i, image in enumerate(images):
            target = folder / f"{i:03d}-{_safe_name(Path(image).name)}"
            shutil.copyfile(image, target)
            staged.append(target)
        self.predict_calls += 1
        records = self.pool.call(
            calls.predict,
            str(self.ui.home),
            str(model.weights),
            [str(i) for i in staged],
            None,
            float(conf),
        )
        for record, image, target in zip(records, images, staged, strict=True):
            record["file"], record["image"] = target.name, Path(image).name
        return Output(name, [t.name for t in staged], records)

    def output_file(self, folder: str, file: str) -> Path:
        """The file ``file`` of output folder ``folder``, refusing anything outside it.

        Raises:
            FileNotFoundError: no such output, or a name that leaves the folder.
        """
        return contained(self.ui.outputs, folder, file)


def safe_name(stem: str) -> str:
    """``stem`` as a plain file name: letters, digits, ``.``, ``_`` and ``-`` only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "sounds"


def zip_files(folder: Path, files: Sequence[str | Path], stem: str) -> Path:
    """``files`` in one zip inside ``folder`` (served as any output file is, by name), for
    "Download all"; WAVs hardly compress, so they are stored. Written to a temporary name
    first, so a half-written zip is never served."""
    safe = safe_name(stem)
    target = folder / f"{safe}.zip"
    tmp = folder / f".{safe}.zip.tmp"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
        for f in files:
            archive.write(f, Path(f).name)
    tmp.replace(target)
    return target


def contained(root: Path, *parts: str) -> Path:
    """``root/part/...`` if it is an existing file inside ``root``.

    Raises:
        FileNotFoundError: it is missing, or the parts leave ``root`` ('..', links, absolute).
    """
    target = root.joinpath(*parts).resolve()
    base = root.resolve()
    if any(p in ("", ".", "..") or "/" in p or "\\" in p for p in parts):
        raise FileNotFoundError(f"{'/'.join(parts)}: not a file name")
    if not target.is_relative_to(base) or not target.is_file():
        raise FileNotFoundError(f"{'/'.join(parts)}: no such file")
    return target
