"""``smalltrain weights``: register pretrained detection weights once, then name them.

``weights add FILE [--name N]`` copies a .pt into the home's weights folder and records its
sha256 in ``weights/weights.json``; ``--set base_model=N`` then finds it by name, and
``weights list`` shows each file with whether it still matches its recorded sha256. The file is
checked without loading it (see ``engine/ptinfo``): it must be a PyTorch checkpoint of an
Ultralytics detection model. Loading a .pt runs code stored in it (Ultralytics checkpoints are
pickles), so only add files from sources you trust.
"""

from __future__ import annotations

from pathlib import Path

import typer

from smalltrain.cli.common import JSON_HELP, console, handle_errors, home, print_json, warn
from smalltrain.cli.output import print_table

__all__ = ["app"]

app = typer.Typer(name="weights", help="Pretrained detection weights: add, list.")


@app.command("add")
@handle_errors
def add_cmd(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A .pt file."),
    name: str | None = typer.Option(
        None, "--name", help="The name to use it by (default: the file's name), e.g. yolov8s.pt."
    ),
    force: bool = typer.Option(False, "--force", help="Replace a file of the same name."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Copy a .pt into the weights folder and record its sha256."""
    from smalltrain.service.weights import WeightsStore

    entry = WeightsStore(home()).add(file, name, replace=force)
    if as_json:
        print_json(entry.to_dict())
        return
    console.print(f"added {entry.name} ({entry.size / 2**20:.1f} MiB, sha256 {entry.sha256})")
    console.print(f"use it with: smalltrain train DATASET --set base_model={entry.name}")


@app.command("list")
@handle_errors
def list_cmd(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """List the weights folder: name, size, sha256, and whether each file still matches."""
    from smalltrain.service.weights import WeightsStore

    store = WeightsStore(home())
    entries = store.list()
    if as_json:
        print_json([e.to_dict() for e in entries])
        return
    if not entries:
        console.print(f"no weights in {store.folder}; add a .pt with: smalltrain weights add FILE")
        return
    rows = [[e.name, f"{e.size / 2**20:.1f} MiB", e.state, e.sha256 or "-", e.source or "-"]
            for e in entries]  # fmt: skip
    print_table(["name", "size", "state", "sha256", "added from"], rows, wrap=["added from"])
    for e in entries:
        if e.state == "changed":
            warn(f"{e.name} changed since it was added (sha256 differs); add it again with "
                 f"--force if that is expected")  # fmt: skip
