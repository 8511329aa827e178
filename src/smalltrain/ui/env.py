"""The web UI's folders in the home, and an offline, private environment for Gradio.

``prepare`` must run before gradio is imported: Gradio reads these variables at import time.
Without them it sends analytics and version checks to the internet, and keeps temporary files
(every upload) in the system temp folder, outside the home.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from smalltrain import paths

__all__ = ["UIPaths", "prepare"]

#: Set before gradio is imported (values are strings, as the environment holds them).
GRADIO_ENV = {
    "GRADIO_ANALYTICS_ENABLED": "False",  # no telemetry, no version check
    "GRADIO_SSR_MODE": "False",  # no Node server
    "GRADIO_MCP_SERVER": "False",
    "GRADIO_RUN_HISTORY": "False",  # nothing stored in the browser or sent to a hub
    "HF_HUB_OFFLINE": "1",  # gradio_client never looks anything up on the Hub
    "HF_HUB_DISABLE_TELEMETRY": "1",
}


@dataclass(frozen=True)
class UIPaths:
    """Where the UI keeps its files, all under ``<home>/ui`` (plus uploaded datasets)."""

    home: Path

    @property
    def root(self) -> Path:
        return paths.ui_dir(self.home)

    @property
    def settings(self) -> Path:
        """Remembered train settings, one JSON file per dataset."""
        return self.root / "settings"

    @property
    def reports(self) -> Path:
        """Full inspection reports of registered datasets (with every skipped file)."""
        return self.root / "reports"

    @property
    def outputs(self) -> Path:
        """Files made by "use" actions (generated sounds, annotated images), one folder each."""
        return self.root / "outputs"

    @property
    def uploads(self) -> Path:
        """Files uploaded for one "use" action (reconstruct, evaluate, predict)."""
        return self.root / "uploads"

    @property
    def tmp(self) -> Path:
        """Gradio's temporary files (``GRADIO_TEMP_DIR``)."""
        return self.root / "tmp"

    @property
    def staging(self) -> Path:
        """API uploads while they stream in. Not inside ``tmp``: Gradio's file route serves
        anything under its own temporary folder, a half-written upload included."""
        return self.root / "staging"

    @property
    def datasets(self) -> Path:
        """Datasets uploaded through the UI or the API."""
        return paths.datasets_dir(self.home)

    def make(self) -> UIPaths:
        folders = (self.settings, self.reports, self.outputs, self.uploads, self.tmp, self.staging)
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
        return self


def prepare(home: Path) -> UIPaths:
    """Create the UI's folders and set Gradio's environment (call before importing gradio)."""
    ui = UIPaths(home).make()
    os.environ.update(GRADIO_ENV)
    os.environ["GRADIO_TEMP_DIR"] = str(ui.tmp)
    # matplotlib (imported by gradio) must not write its font cache to ~/.config
    os.environ.setdefault("MPLCONFIGDIR", str(paths.tool_dir(home, "matplotlib")))
    return ui
