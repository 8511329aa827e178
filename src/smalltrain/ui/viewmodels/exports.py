"""Model exports as the Models tab and the HTTP API offer them: run ``service.exports`` in a
helper child process (it loads torch and Ultralytics), list a model's exports, and hand out the
file to download (the export's one file, or a zip of its folder)."""

from __future__ import annotations

from html import escape
from pathlib import Path
from urllib.parse import quote

from smalltrain.service import exports
from smalltrain.service.exports import ExportInfo
from smalltrain.store.models import ModelStore
from smalltrain.ui.child.pool import ChildPool

__all__ = ["EXPORT_TIMEOUT_S", "ExportsUI", "links_html", "size_text"]

#: The longest one export may take (an 11 M-parameter detector takes ~20 s on 2 cores).
EXPORT_TIMEOUT_S = 900.0


class ExportsUI:
    """The exports of a home's registered models."""

    def __init__(self, home: Path, models: ModelStore, pool: ChildPool) -> None:
        self.home = Path(home)
        self.models = models
        self.pool = pool

    def formats(self, dataset: str, name: str) -> tuple[str, ...]:
        """The formats the model's task exports to."""
        info = self.models.get(dataset, name)
        return exports.FORMATS.get(info.task or "detect", ())

    def run(self, dataset: str, name: str, fmt: str) -> ExportInfo:
        """Export ``DATASET/NAME`` to ``fmt`` in a child process (the same call as the CLI's).

        Raises:
            ModelNotFound, ConfigError, MissingDependency, CheckpointError, TimeoutError.
        """
        info = self.models.get(dataset, name)  # ModelNotFound here, before a child starts
        result: ExportInfo = self.pool.call(
            exports.export_model, str(self.home), f"{info.dataset}/{info.name}", str(fmt),
            timeout=EXPORT_TIMEOUT_S,
        )  # fmt: skip
        return result

    def list(self, dataset: str, name: str) -> list[ExportInfo]:
        """The model's finished exports."""
        return exports.list_exports(self.models.get(dataset, name).path)

    def download(self, dataset: str, name: str, fmt: str) -> Path:
        """The file to send for an export.

        Raises:
            ModelNotFound; FileNotFoundError: no export in that format yet.
        """
        return exports.download_file(self.models.get(dataset, name).path, fmt)


def size_text(size: int) -> str:
    """A file size a person reads: ``812 B``, ``96 KiB``, ``2.4 MiB`` (a tiny audio export is
    well under 0.1 MiB, which ``0.0 MiB`` would hide)."""
    if size < 1024:
        return f"{size} B"
    if size < 2**20:
        return f"{size / 1024:.0f} KiB"
    return f"{size / 2**20:.1f} MiB"


def links_html(dataset: str, name: str, found: list[ExportInfo]) -> str:
    """Download links for a model's exports (through the API, behind the same guard)."""
    if not found:
        return '<span class="st-small">No export yet.</span>'
    links = []
    for e in found:
        url = f"/api/models/{quote(dataset)}/{quote(name)}/exports/{quote(e.format)}"
        what = "" if e.task == "detect" and e.path.is_file() else " (.zip)"
        links.append(
            f'<a class="st-buttonlink" href="{escape(url)}" download>'
            f"Download {escape(e.format)}{what} · {size_text(e.size)}</a>"
        )
    return " ".join(links)
