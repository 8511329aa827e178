"""The optional Ray integration: jobs placed on a Ray cluster (``pip install smalltrain[ray]``).

Fenced off as huey fences ``contrib/``: only the modules of this folder import ray, and only
``executor``, ``shipping`` and ``node`` import it at module level.

- ``support``: is Ray installed; load the executor or say what to install.
- ``address``: a HOST:PORT checked before Ray joins it.
- ``executor``: ``RayExecutor`` (head side); ``shipping``: datasets and run folders into the
  object store; ``node``: the worker side (``AttemptActor`` actor, node cache, run mirror).
"""
