"""A detection model to ONNX, TorchScript or OpenVINO, through Ultralytics' own exporter, offline.

Ultralytics checks an exporter's packages with ``check_requirements`` and, when one is missing,
pip-installs it ("AutoUpdate"). Here nothing may install or download, so: the offline guard runs
first (``YOLO_OFFLINE``, ``YOLO_AUTOINSTALL=false``), ``checks.AUTOINSTALL`` is forced off in
case Ultralytics was imported before, and the caller (``service.exports``) has already checked
that every package the format needs imports. OpenVINO's usage statistics are declined.
Ultralytics writes the export beside the weights it was given, so the weights are copied into
``work_dir`` first and the export lands there.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from smalltrain.errors import CheckpointError, MissingDependency
from smalltrain.tasks.detect import offline
from smalltrain.tasks.detect.callbacks import redirect_output

__all__ = ["FORMATS", "export"]

#: Our format names -> Ultralytics' format argument.
FORMATS = {"onnx": "onnx", "torchscript": "torchscript", "openvino": "openvino"}


def _forbid_installs() -> None:
    """Make Ultralytics' requirement checks report instead of pip-installing."""
    from ultralytics.utils import checks

    checks.AUTOINSTALL = False
    checks.ONLINE = False


def no_openvino_telemetry() -> None:
    """Decline OpenVINO's usage statistics for this process.

    OpenVINO's converter sends them to Google Analytics unless ``~/intel/openvino_telemetry``
    says no: with no such file it counts as consent. We neither send nor write the user's file.
    """
    try:
        from openvino_telemetry.utils import opt_in_checker
    except ImportError:
        return
    declined = opt_in_checker.ConsentCheckResult.DECLINED
    opt_in_checker.OptInChecker.check = lambda *args, **kwargs: declined


def export(
    weights: str | Path,
    fmt: str,
    work_dir: str | Path,
    *,
    imgsz: int | None = None,
    home: Path,
) -> Path:
    """Export ``weights`` to ``fmt`` inside ``work_dir``; returns the file or folder made.

    Args:
        imgsz: the export's input size (default: the size the model was trained at).

    Raises:
        ValueError: an unknown format.
        MissingDependency: Ultralytics reported a missing package anyway.
        CheckpointError: the weights are not an Ultralytics detection model, or the export failed.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: choose one of {', '.join(FORMATS)}")
    offline.apply(home)
    _forbid_installs()
    if fmt == "openvino":
        no_openvino_telemetry()
    from ultralytics import YOLO

    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    local = work / "best.pt"
    shutil.copyfile(weights, local)
    try:
        model = YOLO(str(local), task="detect")
    except Exception as exc:  # Ultralytics raises many kinds for a file it cannot read
        raise CheckpointError(f"{weights}: not an Ultralytics detection model ({exc})") from exc
    size = imgsz or _trained_size(model)
    kwargs: dict[str, Any] = {"format": FORMATS[fmt], "imgsz": size, "device": "cpu"}
    if fmt == "onnx":
        # any input size: predict then letterboxes as for the .pt (to a multiple of 32, not a
        # square), so the boxes match the .pt's
        kwargs["dynamic"] = True
    try:
        with redirect_output(work / "export.log"):
            made = model.export(**kwargs)
    except ImportError as exc:  # a package our check missed (an extra dependency of a package)
        raise MissingDependency(
            f"exporting to {fmt} needs {exc.name or exc}; install it with: "
            "pip install 'smalltrain[export]'"
        ) from exc
    except Exception as exc:
        log = (work / "export.log").read_text(encoding="utf-8", errors="replace")[-600:]
        raise CheckpointError(f"exporting {weights} to {fmt} failed: {exc}\n{log}") from exc
    local.unlink(missing_ok=True)
    if not made or not Path(made).exists():
        raise CheckpointError(f"exporting {weights} to {fmt} wrote nothing (see export.log)")
    return Path(made)


def _trained_size(model: Any) -> int:
    """The image size a checkpoint was trained at (its ``train_args``), else 640."""
    args = getattr(model, "ckpt", None) or {}
    size = (args.get("train_args") or {}).get("imgsz") if isinstance(args, dict) else None
    return int(size) if isinstance(size, int) and size > 0 else 640
