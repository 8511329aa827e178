"""A Ray cluster address, checked before Ray is asked to join it (no Ray import here)."""

from __future__ import annotations

import socket

from smalltrain.errors import ClusterError

__all__ = ["check_address"]


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
