"""The service layer: queue jobs, run them, follow them, register their models.

It joins the tasks (what to train) with the stores (where jobs, datasets and models are kept)
on the engine's core. Faces (the CLI, the web UI, the HTTP API) talk to this layer.

- ``manager``: ``TrainingManager`` (the public API); ``aio``: ``AsyncTrainingManager``.
- ``planning``: a ``JobSpec`` → a validated job; ``registration``: a finished job → a model.
- ``datasets``: register a dataset (inspect it with its task, keep the record).
- ``scheduler``: one per home; claims queued jobs and runs them through an executor.
- ``executors``: where a job runs (inline, thread, process); ``attempt``: one attempt of a
  job (its spec and outcome, the shared ``run_task``, the child process's entry point).
- ``sink``: batched event writes; ``live``: following a job's events.
"""
