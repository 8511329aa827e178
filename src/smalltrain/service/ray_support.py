"""The door to the optional Ray support: check Ray is there, then load the ray executor.

Nothing here imports Ray at module level, so every light command stays fast and works
without it. ``smalltrain[ray]`` installs it.
"""

from __future__ import annotations

import importlib.util
import socket
from typing import Any

from smalltrain.errors import ClusterError, MissingDependency

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
    from smalltrain.service.ray_executor import RayExecutor

    return RayExecutor


def check_address(address: str | None, timeout_s: float = 5.0) -> None:
    """Fail at once, in words, when a "HOST:PORT" cluster address cannot be reached.

    ``ray.init`` would otherwise wait minutes for an address where nothing listens. None,
    "auto", "local" and "ray://..." addresses are left to Ray.

    Raises:
        ClusterError: a malformed address, or nothing answers there within ``timeout_s``.
    """
    if not address or address in ("auto", "local") or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(
            f"--ray {address!r}: give the head's HOST:PORT, e.g. 10.0.0.5:6379 (or 'auto' "
            "for the cluster this machine joined with `ray start`)"
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ClusterError(
            f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}. Is "
            f"`ray start --head --port={port}` running there, and may this machine reach "
            "that port?"
        ) from None
