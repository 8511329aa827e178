"""Make Ultralytics run offline: no downloads, no telemetry, no font fetch, no AMP-check download.

Call :func:`apply` before anything imports ``ultralytics`` in the process. It sets
``YOLO_OFFLINE=1``, ``YOLO_AUTOINSTALL=false``, ``YOLO_CONFIG_DIR=<home>/cache/ultralytics`` and
``MPLCONFIGDIR=<home>/cache/matplotlib`` (matplotlib's font cache stays in the home),
installs matplotlib's DejaVuSans as ``Arial.ttf`` / ``Arial.Unicode.ttf`` there (Ultralytics
otherwise makes a network check for its font on every run), then turns settings sync and every
integration off and points Ultralytics' datasets/weights/runs dirs into our home.

If Ultralytics was already imported, :func:`apply` still patches what it can (its ``ONLINE``
flags, settings and fonts in the config dir it chose) so that a late call stays safe.

:func:`resolve_base_model` turns ``TrainingConfig.base_model`` into something Ultralytics can
load without a download, or raises :class:`~smalltrain.errors.WeightsNotFound` at once.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from smalltrain import paths
from smalltrain.errors import CheckpointError, WeightsNotFound, WrongModelKind

__all__ = ["apply", "config_dir", "matplotlib_dir", "resolve_base_model", "weights_dir"]

log = logging.getLogger(__name__)

_INTEGRATIONS = ("clearml", "comet", "dvc", "mlflow", "raytune", "wandb", "tensorboard")
_FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")
_applied: Path | None = None


def config_dir(home: Path) -> Path:
    """The folder given to Ultralytics as ``YOLO_CONFIG_DIR``."""
    return paths.tool_dir(Path(home), "ultralytics")


def weights_dir(home: Path) -> Path:
    """The local weights folder searched for bare model names such as ``yolo11n.pt``."""
    return paths.weights_dir(Path(home))


def _install_fonts(target: Path) -> None:
    import matplotlib

    source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    target.mkdir(parents=True, exist_ok=True)
    for name in _FONT_NAMES:
        dest = target / name
        if not dest.exists() and source.is_file():
            tmp = dest.with_suffix(".tmp")
            shutil.copyfile(source, tmp)
            os.replace(tmp, dest)


def matplotlib_dir(home: Path) -> Path:
    """matplotlib's config and font cache (``MPLCONFIGDIR``), inside the smalltrain home."""
    return paths.tool_dir(Path(home), "matplotlib")


def _set_matplotlib_dir(home: Path) -> None:
    """Keep matplotlib's font cache out of ``$HOME/.cache`` and ``$HOME/.config``.

    matplotlib reads ``MPLCONFIGDIR`` once, on import, so this runs before anything imports
    it; a user's own ``MPLCONFIGDIR`` is respected.
    """
    if "MPLCONFIGDIR" not in os.environ and "matplotlib" not in sys.modules:
        folder = matplotlib_dir(home)
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["MPLCONFIGDIR"] = str(folder)


def _set_env(cfg: Path, tensorboard: bool) -> None:
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "false"
    os.environ["YOLO_CONFIG_DIR"] = str(cfg)
    os.environ.setdefault("WANDB_MODE", "disabled")
    os.environ.setdefault("COMET_MODE", "disabled")
    os.environ.setdefault("MLFLOW_TRACKING_URI", "")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not tensorboard:
        os.environ.setdefault("TENSORBOARD_DISABLED", "1")


def _patch_loaded(home: Path, tensorboard: bool) -> None:
    """Settings and module flags that only exist once Ultralytics is imported."""
    previous = logging.root.manager.disable
    logging.disable(logging.INFO)  # "Creating new Ultralytics Settings" would reach the terminal
    try:
        import ultralytics.utils  # noqa: F401
    finally:
        logging.disable(previous)
    import ultralytics.utils as uutils
    from ultralytics.engine import trainer as utrainer
    from ultralytics.utils import checks, events

    settings: dict[str, Any] = dict.fromkeys(_INTEGRATIONS, False)
    settings.update(
        sync=False,
        tensorboard=tensorboard,
        datasets_dir=str(paths.tool_dir(home, "ultralytics-datasets")),
        weights_dir=str(weights_dir(home)),
        runs_dir=str(paths.runs_dir(home) / "ultralytics"),
        vscode_msg=False,
        openvino_msg=False,
    )
    if any(uutils.SETTINGS.get(k) != v for k, v in settings.items()):
        uutils.SETTINGS.update(settings)
    # Late application (Ultralytics imported first): make the cached flags agree with the env.
    for module in (uutils, checks, events):
        if getattr(module, "ONLINE", False):
            module.ONLINE = False  # type: ignore[attr-defined]
    _install_fonts(Path(uutils.USER_CONFIG_DIR))
    if not getattr(utrainer.check_amp, "_smalltrain_offline", False):
        utrainer.check_amp = _offline_check_amp(utrainer.check_amp)


def _offline_check_amp(original: Any) -> Any:
    """Wrap Ultralytics' AMP check, which downloads yolo26n.pt when it is not on disk.

    Offline, Ultralytics itself keeps ``amp=True`` when the check cannot run; we do the same
    without first waiting on a download.
    """

    def check_amp(model: Any) -> bool:
        from ultralytics.utils import WEIGHTS_DIR

        device = next(model.parameters()).device
        if device.type in ("cpu", "mps") or (Path(WEIGHTS_DIR) / "yolo26n.pt").is_file():
            return bool(original(model))
        log.info("AMP check skipped (offline, no local yolo26n.pt); keeping amp=True")
        return True

    check_amp._smalltrain_offline = True  # type: ignore[attr-defined]
    return check_amp


def apply(home: Path, *, tensorboard: bool = False) -> Path:
    """Make Ultralytics offline-safe for this process; returns its config dir.

    Args:
        home: the smalltrain home (``<home>/cache/ultralytics`` becomes ``YOLO_CONFIG_DIR``).
        tensorboard: keep Ultralytics' TensorBoard callback on.
    """
    global _applied
    home = Path(home).resolve()
    cfg = config_dir(home)
    _set_matplotlib_dir(home)
    already_imported = "ultralytics" in sys.modules
    if not already_imported:
        _set_env(cfg, tensorboard)
        _install_fonts(cfg / "Ultralytics")
    else:
        os.environ["YOLO_OFFLINE"] = "1"
        os.environ["YOLO_AUTOINSTALL"] = "false"
        if _applied is None:
            log.warning("ultralytics was imported before smalltrain's offline guard; patching it")
    weights_dir(home).mkdir(parents=True, exist_ok=True)
    _patch_loaded(home, tensorboard)
    _applied = cfg
    return cfg


def _verified(path: Path, home: Path | None) -> str:
    """``path`` (a file of the weights folder) if it matches the sha256 recorded for it."""
    import json

    from smalltrain.engine.fsutil import sha256_file

    try:
        index = json.loads(paths.weights_index(Path(str(home))).read_text(encoding="utf-8"))
        want = (index.get(path.name) or {}).get("sha256")
    except (OSError, ValueError, AttributeError):
        want = None  # placed by hand, or no index: nothing recorded to check against
    if want and sha256_file(path) != want:
        raise CheckpointError(
            f"{path}: changed since it was registered (its sha256 is not the recorded "
            f"{want[:16]}...), so it is not loaded. If the change is yours, register it again "
            f"with: smalltrain weights add --force {path}"
        )
    return str(path)


def _loadable(found: str) -> str:
    """``found`` if it may be a YOLO checkpoint: refused at once, before any job is queued,
    when it is no PyTorch file at all (a text or an HTML page saved as .pt), a damaged one, or
    a smalltrain audio model. Read with ``peek``: nothing in the file runs."""
    from smalltrain.engine.ptinfo import peek

    path = Path(found)
    if path.suffix.lower() in (".yaml", ".yml"):
        return found
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc.strerror or exc}).") from exc
    what = "Give a YOLO .pt saved by Ultralytics or smalltrain (e.g. a model's weights/best.pt)."
    if head.startswith(b"\x80"):
        return found  # a pickle: torch's legacy format, which only loading can judge
    if not head.startswith(b"PK\x03\x04"):
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (no .pt starts like this). {what}")
    try:
        data = peek(path)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{exc} {what}") from exc
    from smalltrain.tasks import kind_of_checkpoint

    if kind_of_checkpoint(data) == "audio":
        raise WrongModelKind(f"{path}: a smalltrain audio model, not a detector. {what}")
    return found


def _is_official_name(name: str) -> bool:
    return "/" not in name and "\\" not in name and name.lower().startswith(("yolo", "rtdetr"))


@functools.cache
def _shipped_configs() -> frozenset[str] | None:
    """The model .yaml names in the installed Ultralytics package (found without importing
    it), or None when it is not installed."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.origin:
        return None
    root = Path(spec.origin).parent / "cfg" / "models"
    return frozenset(p.name for p in root.rglob("*.y*ml"))


def ships_config(name: str) -> bool:
    """Whether Ultralytics builds ``name`` (e.g. ``yolo11n.yaml``) from a config it ships: the
    name itself, or the name without its size letter (``yolo11.yaml``), as Ultralytics looks
    it up. True when Ultralytics is not installed (the job then fails with that)."""
    shipped = _shipped_configs()
    if shipped is None:
        return True
    unified = re.sub(r"(\d+)([nslmx])(.+)?$", r"\1\3", Path(name).stem) + Path(name).suffix
    p6 = re.sub(r"^(yolov[58][nsmlx])6$", r"\1-p6", Path(name).stem)
    p6 = re.sub(r"(\d+)([nslmx])(.+)?$", r"\1\3", p6) + Path(name).suffix
    return bool({name, unified, p6} & shipped)


def resolve_base_model(name: str, home: Path | None = None) -> str:
    """Turn ``base_model`` into a local path or a model yaml that needs no download.

    Order: a bare name found in ``<home>/weights`` (before the working folder, so a name means
    the registered file wherever the job runs); an existing file path; a ``.yaml`` (a local
    file, or an Ultralytics model config such as ``yolov8n.yaml``, built from scratch). A file
    of the weights folder whose sha256 was recorded (``smalltrain weights add``) is checked
    against it before anything loads it.

    Raises:
        WeightsNotFound: a ``.pt`` that is not on disk; we never download it.
        CheckpointError: a registered file changed since it was registered.
    """
    text = str(name).strip()
    path = Path(text).expanduser()
    folder = weights_dir(home).resolve() if home is not None else None
    if folder is not None and len(path.parts) == 1 and (folder / text).is_file():
        return _loadable(_verified(folder / text, home))
    if path.is_file():
        found = path.resolve()
        return _loadable(_verified(found, home) if found.parent == folder else str(found))
    if path.suffix.lower() in (".yaml", ".yml"):
        if len(path.parts) > 1:
            raise WeightsNotFound(f"model config {text!r} does not exist. Check the path.")
        if not ships_config(text):
            raise WeightsNotFound(
                f"model config {text!r} is neither a file here nor one Ultralytics ships. Give "
                f"a shipped one such as 'yolo11n.yaml' or 'yolov8s.yaml' (the letter is the "
                "size: n, s, m, l, x), or the path of your own .yaml."
            )
        return text  # an Ultralytics model config shipped in the package: trains from scratch
    where = f" or in {weights_dir(home)}" if home is not None else ""
    scratch = f"{path.stem}.yaml" if ships_config(f"{path.stem}.yaml") else "yolo11n.yaml"
    hint = (
        "smalltrain never downloads weights. Give base_model as a local .pt file, or register "
        f"one once with `smalltrain weights add FILE` and name it, or train from scratch with "
        f"a model .yaml such as '{scratch}'."
    )
    kind = "official pretrained weights" if _is_official_name(text) else "weights"
    raise WeightsNotFound(f"{kind} {text!r} not found on disk{where}. {hint}")
