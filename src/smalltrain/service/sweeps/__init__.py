"""Sweeps: several trials of one job over a grid, stopped early by ASHA, best one registered.

- ``spec``: ``SweepSpec``, the trial grid, ``plan_sweep``, ``sweep_summary``.
- ``asha``: the ASHA stopping rule, a pure function of the stored epoch reports.
- ``watch``: ``SweepWatcher`` (early stops; ``finalize_sweep`` once every trial ended).
- ``api``: the manager's sweep methods.
"""
