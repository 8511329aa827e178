"""``ModelInfo``: one registered model as the registry describes it, and value helpers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from smalltrain.engine.plain import plain

__all__ = ["ENTRY_FIELDS", "ModelEntry", "ModelInfo", "plain", "utc_now"]

ENTRY_FIELDS = (
    "created",
    "base_model",
    "epochs_completed",
    "dataset_snapshot",
    "task",
    "job_id",
    "weights_sha256",
    "weights_size",
    "dataset_fingerprint",
    "versions",
    "headline_metric",
    "headline_mode",
)


@dataclass
class ModelInfo:
    """A registered model: where it lives, whether it is active, and its registry entry."""

    name: str
    dataset: str
    path: Path
    weights: Path
    active: bool = False
    created: str = ""
    task: str = ""
    base_model: str | None = None
    epochs_completed: int = 0
    headline_metric: str = ""
    headline_value: float | None = None
    headline_mode: str = ""  # "min" | "max" | "" (older entries: judged by the name)
    dataset_snapshot: str = ""
    dataset_fingerprint: str = ""
    job_id: str | None = None
    weights_sha256: str = ""
    weights_size: int = 0
    versions: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # registry keys this version ignores

    @classmethod
    def from_entry(
        cls, dataset: str, name: str, entry: Mapping[str, Any], models_dir: Path, active: bool
    ) -> ModelInfo:
        """Build from one ``registry.json`` entry; ``models_dir`` is ``<root>/<dataset>/models``."""
        folder = models_dir / name
        key = str(entry.get("headline_metric") or _guess_headline(entry))
        known = {k: entry[k] for k in ENTRY_FIELDS if k in entry and entry[k] is not None}
        known.pop("headline_metric", None)
        extra = {k: v for k, v in entry.items() if k not in ENTRY_FIELDS and k != key}
        value = entry.get(key) if key else None
        return cls(
            name=name,
            dataset=dataset,
            path=folder,
            weights=folder.joinpath("weights", "best.pt"),
            active=active,
            headline_metric=key,
            headline_value=None if value is None else float(value),
            extra=extra,
            **known,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (paths as strings)."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["path"], out["weights"] = str(self.path), str(self.weights)
        return out


def _guess_headline(entry: Mapping[str, Any]) -> str:
    for key in ("best_map50_95", "best_val_sc", "best_map50", "best_val_loss"):
        if key in entry:
            return key
    return next((k for k in entry if k.startswith("best_")), "")


@dataclass(frozen=True)
class ModelEntry:
    """What ``ModelStore.save`` registers: a trained model's weights and what is known of it.

    ``headline`` is ``("best_val_loss", 0.12)`` or ``("best_map50", 0.82)`` (a NaN value is
    stored as null) and ``headline_mode`` says whether lower ("min") or higher ("max") is better.
    ``extra_files`` maps a relative name in the model folder to a source file or folder (e.g.
    ``{"previews": run_dir / "previews"}``); ``fields`` are more registry fields (e.g. the
    original ``best_map50`` beside another headline) and never replace the ones above.
    """

    dataset: str
    name: str
    weights: Path
    task: str
    config: Mapping[str, Any]
    metrics: Mapping[str, Any]
    base_model: str | None
    epochs_completed: int
    headline: tuple[str, float | None]
    dataset_snapshot: str = ""
    dataset_fingerprint: str = ""
    job_id: str | None = None
    versions: Mapping[str, str] = field(default_factory=dict)
    extra_files: Mapping[str, Any] = field(default_factory=dict)
    headline_mode: str = ""
    fields: Mapping[str, Any] = field(default_factory=dict)


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
