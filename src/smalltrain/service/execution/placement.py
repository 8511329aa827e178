"""Where a job runs, apart from what it trains: CPUs, GPUs, retries, how its data travels.

These settings are not fields of a task's config (a model trains the same on 1 or 4 CPUs), so
they travel beside it, in the job's ``placement``. They are set like config fields
(``--set num_gpus=1``, ``JobSpec(overrides={"num_cpus": 2})``); ``split_placement`` takes them
out of the overrides before the task validates the rest.

- ``num_cpus``: CPUs the job asks for. On Ray, the CPUs Ray reserves for it (default 1); on
  this machine, the job's torch thread count (default: the cores divided by the jobs that may
  run at once, see ``service.threads``).
- ``num_gpus``: GPUs the job asks for on Ray (default: 1 when the job's device is CUDA, 0 on the
  CPU; with device "auto", 1 when some node of the cluster has a GPU).
- ``max_retries``: how many times a job whose Ray node or worker died is retried from its newest
  checkpoint (default 2).
- ``ship_dataset``: send the dataset to Ray nodes through the object store (default true); false
  when every node can read the dataset's path itself.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from smalltrain.engine.config import apply_overrides, check

__all__ = ["PLACEMENT_KEYS", "Placement", "split_placement"]


@dataclass(frozen=True)
class Placement:
    """A job's placement settings (see the module docstring); validated on creation.

    Raises:
        ConfigError: a value breaks its rule, e.g. ``num_gpus=-1: must be >= 0``.
    """

    num_cpus: float | None = None
    num_gpus: float | None = None
    max_retries: int = 2
    ship_dataset: bool = True

    def __post_init__(self) -> None:
        if self.num_cpus is not None:
            check("num_cpus", self.num_cpus, _number(self.num_cpus), "must be a number")
            check("num_cpus", self.num_cpus, self.num_cpus > 0, "must be > 0")
        if self.num_gpus is not None:
            check("num_gpus", self.num_gpus, _number(self.num_gpus), "must be a number")
            check("num_gpus", self.num_gpus, self.num_gpus >= 0, "must be >= 0")
        ok = isinstance(self.max_retries, int) and not isinstance(self.max_retries, bool)
        check("max_retries", self.max_retries, ok and self.max_retries >= 0, "must be an int >= 0")
        check("ship_dataset", self.ship_dataset, isinstance(self.ship_dataset, bool),
              "must be true or false")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The settings that differ from the defaults (what a job stores)."""
        default = Placement()
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Placement:
        """Rebuild from ``to_dict`` output (or from ``--set`` strings).

        Raises:
            ConfigError: an unknown key or a bad value.
        """
        return apply_overrides(cls(), dict(data or {}))

    def gpus_for(self, device: str | None, cluster_has_gpu: bool) -> float:
        """GPUs to ask for: the setting, else 1 for a CUDA device (or "auto" on a cluster with
        a GPU), else 0."""
        if self.num_gpus is not None:
            return float(self.num_gpus)
        device = (device or "auto").lower()
        if device.startswith("cuda") or (device == "auto" and cluster_has_gpu):
            return 1.0
        return 0.0


#: The keys that are placement settings rather than task config fields.
PLACEMENT_KEYS = frozenset(f.name for f in dataclasses.fields(Placement))


def split_placement(overrides: Mapping[str, Any]) -> tuple[dict[str, Any], Placement]:
    """Split ``overrides`` into the task's config overrides and a validated ``Placement``.

    Raises:
        ConfigError: a placement value breaks its rule.
    """
    task = {k: v for k, v in overrides.items() if k not in PLACEMENT_KEYS}
    placement = Placement.from_dict({k: v for k, v in overrides.items() if k in PLACEMENT_KEYS})
    return task, placement


def _number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )
