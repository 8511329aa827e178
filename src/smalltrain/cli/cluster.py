"""The ``--ray ADDRESS`` option every command that runs a scheduler shares.

``smalltrain worker --ray ADDRESS`` (and ``train``, ``resume``, ``sweep``) makes this home's
scheduler place its jobs on the Ray cluster at ADDRESS instead of local processes. A command
that runs a scheduler adds the option with ``ray_option()`` and builds its executor with
``pick_executor``. Ray is imported only when the option is used.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from smalltrain.service.execution.executors import Executor

__all__ = ["EXECUTOR_NAMES", "RAY_HELP", "pick_executor", "ray_option", "worker_args"]

#: ``service.executors.EXECUTORS``, spelled out so that help text loads no service module
#: (tests/cli/test_startup.py checks the two agree).
EXECUTOR_NAMES = ("inline", "thread", "process", "ray")

RAY_HELP = (
    "Run jobs on the Ray cluster at ADDRESS (host:port of `ray start --head`, 'auto' for the "
    "cluster this machine belongs to, 'local' for a Ray started here). Needs smalltrain[ray]."
)


def ray_option() -> Any:
    """A typer option ``--ray ADDRESS`` (None when not given)."""
    return typer.Option(None, "--ray", metavar="ADDRESS", help=RAY_HELP)


def pick_executor(
    executor: str, ray_address: str | None, *, connect: bool = True
) -> str | Executor:
    """The executor for ``--executor`` and ``--ray``.

    Ray (an address, or ``--executor ray``: ``$RAY_ADDRESS`` or a local Ray) gives a
    ``RayExecutor``, checked at once: with ``connect`` it joins the cluster here, in the main
    thread; else it only checks that the address answers (a command that hands the work to a
    background worker).

    Raises:
        MissingDependency: Ray is not installed.
        ClusterError: nothing answers at the address.
        ValueError: ``--ray`` with another executor than "ray" or "process".
    """
    if ray_address is None and executor != "ray":
        return executor
    if executor not in ("ray", "process"):
        raise ValueError(f"--ray runs jobs on Ray: drop --executor {executor}")
    from smalltrain.service.execution.ray.support import check_address, load_ray_executor

    ray_executor = load_ray_executor()(address=ray_address)
    if connect:
        ray_executor.connect()
    else:
        check_address(ray_address)
    chosen: Executor = ray_executor
    return chosen


def worker_args(executor: str, ray_address: str | None, max_concurrent: int = 1) -> list[str]:
    """Arguments for a background ``smalltrain worker`` that runs jobs the same way."""
    args = ["--max-concurrent", str(max_concurrent)] if max_concurrent > 1 else []
    if ray_address is not None or executor == "ray":
        # "--executor ray" alone: the cluster at $RAY_ADDRESS, else a Ray of the worker's own.
        args += ["--ray", ray_address or os.environ.get("RAY_ADDRESS") or "local"]
    return args
