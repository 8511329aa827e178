"""Exporting a registered model to a runtime people ship in: the one function every face calls.

``export_model(home, "DATASET/NAME", "onnx")`` writes ``<model folder>/exports/onnx/`` (a
temporary folder beside it, renamed into place when complete, so a reader never sees half an
export) with a ``manifest.json`` naming its files; ``list_exports`` reads them back for
``models show``, the UI's Models tab and the HTTP API.

- Detection: ONNX, TorchScript or OpenVINO through Ultralytics' exporter, offline
  (``tasks/detect/export.py``). ``predict`` and ``val`` accept the ``.onnx`` file.
- Audio: ONNX of the prior, the decoder and the encoder, with a standalone ``example.py``
  (``tasks/audio/use/export.py``).

Every package a format needs is checked before anything is loaded; a missing one raises
``MissingDependency`` naming the extra to install. Nothing is ever installed or downloaded.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from smalltrain import __version__, paths
from smalltrain.engine.fsutil import atomic_write_json, replace_folder, sha256_file
from smalltrain.errors import CheckpointError, ConfigError, MissingDependency, ModelNotFound
from smalltrain.store.model_info import ModelInfo, utc_now
from smalltrain.store.models import ModelStore
from smalltrain.tasks import kind_words

__all__ = [
    "EXPORTS_DIR",
    "FORMATS",
    "ExportInfo",
    "check_dependencies",
    "download_file",
    "export_model",
    "find_model",
    "list_exports",
    "verified_weights",
]

EXPORTS_DIR = "exports"
MANIFEST = "manifest.json"
#: The formats each task exports to.
FORMATS: dict[str, tuple[str, ...]] = {
    "detect": ("onnx", "torchscript", "openvino"),
    "audio": ("onnx",),
}
#: Modules each (task, format) needs, with the extra that installs them.
_NEEDS: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    ("detect", "onnx"): (("onnx", "export"), ("onnxslim", "export"), ("onnxruntime", "export")),
    ("detect", "torchscript"): (),
    ("detect", "openvino"): (("openvino", "openvino"),),
    ("audio", "onnx"): (("onnx", "export"), ("onnxruntime", "export")),
}


@dataclass(frozen=True)
class ExportInfo:
    """One export of a model: its format, folder, files and the file to load or download."""

    format: str
    task: str
    model: str  # DATASET/NAME
    folder: Path
    main: str  # the file (or folder) to load: best.onnx, best.torchscript, ...
    files: list[str] = field(default_factory=list)
    created: str = ""
    imgsz: int | None = None
    size: int = 0
    weights_sha256: str = ""  # of the weights it was made from

    @property
    def path(self) -> Path:
        """The file (or folder) to load."""
        return self.folder / self.main

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["folder"], out["path"] = str(self.folder), str(self.path)
        return out


def check_dependencies(task: str, fmt: str) -> None:
    """Raise ``MissingDependency`` when a package ``fmt`` needs does not import (nothing loads).

    Raises:
        ConfigError: ``task`` does not export to ``fmt``.
        MissingDependency: names the packages and the ``pip install`` line.
    """
    formats = FORMATS.get(task, ())
    if fmt not in formats:
        kinds = ", ".join(formats) or "nothing"
        raise ConfigError("format", fmt, f"{kind_words(task)} model exports to {kinds}")
    missing = [(m, extra) for m, extra in _NEEDS[(task, fmt)] if not _importable(m)]
    if missing:
        extras = sorted({extra for _, extra in missing})
        raise MissingDependency(
            f"exporting to {fmt} needs {', '.join(m for m, _ in missing)}, not installed. "
            f"Install with: pip install 'smalltrain[{','.join(extras)}]'"
        )


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def find_model(home: Path, model: str | ModelInfo) -> ModelInfo:
    """A registered model from ``DATASET/NAME`` (or the ModelInfo itself).

    Raises:
        ModelNotFound: not ``DATASET/NAME``, or no such model.
    """
    if isinstance(model, ModelInfo):
        return model
    dataset, _, name = str(model).partition("/")
    if not dataset or not name:
        raise ModelNotFound(f"{model!r}: name a registered model as DATASET/NAME")
    return ModelStore(paths.models_dir(Path(home))).get(dataset, name)


def verified_weights(info: ModelInfo) -> Path:
    """A registered model's weights file, refused when it changed since registration (a .pt
    is code)."""
    if not info.weights.is_file():
        raise CheckpointError(f"{info.weights}: the model's weights file is missing")
    if info.weights_sha256 and sha256_file(info.weights) != info.weights_sha256:
        raise CheckpointError(
            f"{info.weights}: changed since it was registered (sha256 differs), so it is not "
            "loaded; train or register the model again"
        )
    return info.weights


def export_model(
    home: str | Path, model: str | ModelInfo, fmt: str, *, imgsz: int | None = None
) -> ExportInfo:
    """Export a registered model to ``fmt``, beside it in the registry; returns the export.

    A previous export of the same format is replaced only once the new one is complete.

    Args:
        model: ``DATASET/NAME`` or its ``ModelInfo``.
        fmt: "onnx", "torchscript" or "openvino" (see ``FORMATS``).
        imgsz: detection only: the input size (default: the size it was trained at).

    Raises:
        ModelNotFound, ConfigError (a format the task has not), MissingDependency,
        CheckpointError (weights changed or unreadable, or the exporter failed).
    """
    info = find_model(Path(home), model)
    task = info.task or "detect"
    fmt = str(fmt).strip().lower()
    check_dependencies(task, fmt)
    if imgsz is not None and not (isinstance(imgsz, int) and 32 <= imgsz <= 4096):
        raise ConfigError("imgsz", imgsz, "must be an integer from 32 to 4096")
    weights = verified_weights(info)
    root = info.path / EXPORTS_DIR
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".tmp-{fmt}-", dir=root))
    try:
        main = _run_export(task, fmt, weights, work, imgsz, Path(home))
        files = sorted(str(p.relative_to(work)) for p in work.rglob("*") if p.is_file())
        export = ExportInfo(
            format=fmt,
            task=task,
            model=f"{info.dataset}/{info.name}",
            folder=root / fmt,
            main=main,
            files=files,
            created=utc_now(),
            imgsz=imgsz if task == "detect" else None,
            size=sum((work / f).stat().st_size for f in files),
            weights_sha256=info.weights_sha256,
        )
        record = {**export.to_dict(), "versions": _versions()}
        record.pop("folder"), record.pop("path")
        atomic_write_json(work / MANIFEST, record)
        replace_folder(work, root / fmt)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return export


def _run_export(
    task: str, fmt: str, weights: Path, work: Path, imgsz: int | None, home: Path
) -> str:
    """Write the export into ``work``; returns the main file's name there."""
    if task == "audio":
        from smalltrain.tasks.audio.use.export import export_onnx

        export_onnx(weights, work)
        return "decoder.onnx"
    from smalltrain.tasks.detect.export import export

    made = export(weights, fmt, work, imgsz=imgsz, home=home)
    return str(made.relative_to(work))


def _versions() -> dict[str, str]:
    from importlib import metadata

    found = {"smalltrain": __version__}
    for name in ("torch", "ultralytics", "onnx", "onnxruntime", "openvino"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def list_exports(model_folder: str | Path) -> list[ExportInfo]:
    """The complete exports of a model folder (those with a manifest), by format name."""
    root = Path(model_folder) / EXPORTS_DIR
    found = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if folder.name.startswith(".") or not (folder / MANIFEST).is_file():
            continue
        try:
            data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
            fields = {k: data[k] for k in ExportInfo.__dataclass_fields__ if k in data}
            found.append(ExportInfo(**{**fields, "folder": folder}))
        except (OSError, ValueError, TypeError, KeyError):
            continue  # a damaged manifest: not listed; exporting again replaces it
    return found


def download_file(model_folder: str | Path, fmt: str) -> Path:
    """The file to hand out for an export: its one file, or a zip of its folder (made once).

    Raises:
        FileNotFoundError: the model has no export in ``fmt``.
    """
    found = {e.format: e for e in list_exports(model_folder)}
    if fmt not in found:
        have = ", ".join(found) or "none"
        raise FileNotFoundError(f"no {fmt!r} export of this model (exports: {have}); export first")
    export = found[fmt]
    if export.path.is_file() and export.task == "detect":
        return export.path
    archive = export.folder.parent / f"{fmt}.zip"
    manifest = export.folder / MANIFEST
    if not archive.is_file() or archive.stat().st_mtime < manifest.stat().st_mtime:
        partial = archive.with_name(f".{archive.name}.{os.getpid()}.tmp")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
            for rel in [*export.files, MANIFEST]:
                zf.write(export.folder / rel, f"{fmt}/{rel}")
        os.replace(partial, archive)
    return archive
