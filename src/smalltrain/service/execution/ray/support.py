"""The door to the optional Ray support: check Ray is there, then load the ray executor.

Nothing here imports Ray at module level, so every light command stays fast and works
without it. ``smalltrain[ray]`` installs it.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from smalltrain.errors import MissingDependency
from smalltrain.service.execution.ray.address import check_address

__all__ = ["INSTALL_HINT", "check_address", "load_ray_executor", "ray_available", "require_ray"]

INSTALL_HINT = "pip install 'smalltrain[ray]'"


def ray_available() -> bool:
    """Whether Ray can be imported here (without importing it)."""
    try:
        return importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):  # an import hook refuses it, or a stub without a spec
        return False


def require_ray(what: str = "the ray executor") -> None:
    """Raise ``MissingDependency`` saying what to install when Ray is missing."""
    if not ray_available():
        raise MissingDependency(
            f"{what} needs Ray, which is not installed. Install it with: {INSTALL_HINT} "
            "(on the head and on every machine of the cluster)"
        )


def load_ray_executor() -> Any:
    """The ``RayExecutor`` class (imports Ray).

    Raises:
        MissingDependency: Ray is not installed.
    """
    require_ray()
    from smalltrain.service.execution.ray.executor import RayExecutor

    return RayExecutor
