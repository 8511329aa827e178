"""Work the server hands to child processes, so the server process never trains, inspects a
large folder, generates or predicts.

- ``pool``: ``ChildPool``, the warm child processes and errors carried back from them.
- ``calls``: the functions a child runs (plain values in and out).
- ``actions``: ``UseUI``, the "use" actions (generate, reconstruct, interpolate, evaluate,
  predict), each run in a child and written to its own output folder.
"""
