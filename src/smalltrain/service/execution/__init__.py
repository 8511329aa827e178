"""Where and how one attempt of a job runs.

- ``attempt``: one attempt (``AttemptSpec``, ``AttemptOutcome``) and ``run_task``, the one function
  every executor ends in; the child process's entry point.
- ``executors``: the strategies (inline, thread, process; ``ray`` through ``ray/``).
- ``grace``: how long a cancelled attempt may take before it is killed.
- ``threads``: the thread budget of each job process; ``placement``: CPUs, GPUs and retries
  a job asks for; ``sink``: batched event and metric writes.
- ``ray/``: the optional Ray integration, fenced off here (only its modules import ray).
"""
