"""A training run: setup, one epoch, checkpoints, fit warnings, what the model sees, and the
orchestrator (``train``)."""
