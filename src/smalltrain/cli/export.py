"""``smalltrain export MODEL --format onnx|torchscript|openvino``: a registered model to a runtime.

The export is written beside the model in the registry (``models show`` lists it) by
``service.exports.export_model``, the same function the web UI and the HTTP API call.
"""

from __future__ import annotations

import typer

from smalltrain.cli.common import JSON_HELP, console, handle_errors, home, print_json, say
from smalltrain.cli.refs import resolve_model
from smalltrain.errors import ModelNotFound

_MODEL_HELP = (
    "A registered model (NAME or DATASET/NAME), or a dataset (its active model). Detection "
    "models export to onnx, torchscript and openvino; audio models to onnx."
)


@handle_errors
def export_cmd(
    model: str = typer.Argument(..., metavar="MODEL", help=_MODEL_HELP),
    fmt: str = typer.Option(
        "onnx", "--format", metavar="FORMAT", help="onnx (default), torchscript or openvino."
    ),
    image_size: int | None = typer.Option(
        None, "--image-size", help="Detection: the export's input size (default: the model's)."
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Export a registered model (ONNX, TorchScript, OpenVINO) beside it in the registry.

    Nothing is downloaded or installed: a missing package names the extra to install
    (pip install 'smalltrain[export]'). Detection exports load in predict and val; an audio
    export holds a standalone example.py (numpy + onnxruntime + soundfile).
    """
    from smalltrain.service.exports import export_model

    found = resolve_model(model, command="export")
    if found.info is None:
        raise ModelNotFound(
            f"{model!r} is not a registered model; export works on registered models (NAME, "
            "DATASET/NAME or a dataset's active model). List them with: smalltrain models list"
        )
    say(f"exporting {found.label} to {fmt}...", json_mode=as_json)
    export = export_model(home(), found.info, fmt, imgsz=image_size)
    if as_json:
        print_json(export.to_dict())
        return
    console.print(f"exported {export.model} to {export.format}: {export.path}")
    console.print(f"  {len(export.files)} files, {export.size / 2**20:.1f} MiB in {export.folder}")
    if export.task == "detect" and export.format == "onnx":
        console.print(f"  use it: smalltrain predict {export.path} IMAGES")
    if export.task == "audio":
        console.print(f"  try it: python {export.folder / 'example.py'} generate -n 4")


def register(app: typer.Typer) -> None:
    """Add ``export`` to the main app."""
    app.command("export")(export_cmd)
