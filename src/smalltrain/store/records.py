"""Plain records the stores hold and return (no behaviour beyond serialisation)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["DatasetRecord"]


@dataclass
class DatasetRecord:
    """A registered dataset. ``created_at`` is epoch seconds; ``path`` is absolute."""

    name: str
    path: str
    kind: str
    summary: dict[str, Any] = field(default_factory=dict)
    snapshot: str = ""
    fingerprint: str = ""
    quick_fingerprint: str = ""
    created_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return asdict(self)
