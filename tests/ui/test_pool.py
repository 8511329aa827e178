"""``ChildPool``: the UI's helper processes start together and ready for the quick calls."""

from __future__ import annotations

import os

import psutil

from smalltrain.ui.child.pool import ChildPool


def _pool_children() -> set[int]:
    """This process's children that are spawned workers (not a forkserver or tracker)."""
    found = set()
    for child in psutil.Process().children():
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                found.add(child.pid)
        except psutil.Error:
            continue
    return found


def test_the_first_call_starts_every_child_with_the_planning_imported() -> None:
    before = _pool_children()
    pool = ChildPool(max_workers=2)
    try:
        first = pool.call(os.getpid)
        # both children exist after the first call, not only the one that answered it: a
        # Start that lands while the other answers a form check does not wait for a new one
        started = _pool_children() - before
        assert first in started
        assert len(started) == 2
        # and the planning code was imported when each child started, before any plan
        loaded = "__import__('sys').modules.get('smalltrain.service.planning') is not None"
        assert pool.call(eval, loaded) is True
    finally:
        pool.close()
