"""Errors that the command line reports as one line (kept free of jax imports)."""


class TrainingError(Exception):
    """Training cannot start or cannot go on (bad settings, a non-finite loss, a missing run)."""


class CheckpointError(Exception):
    """A checkpoint does not belong to this run, or cannot be read."""
