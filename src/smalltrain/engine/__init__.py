"""Task-agnostic training machinery: events, checkpoints, runner, jobs, resources."""
