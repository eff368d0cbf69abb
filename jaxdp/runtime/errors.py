"""Errors that the command line reports as one line (kept free of jax imports).

Every error jaxdp raises on purpose derives from `JaxdpError` and is defined here, so a command
line catches one class and prints ``error: <message>``; each message names the bad field or file.
"""


class JaxdpError(Exception):
    """A refusal with a one-line reason that names what is wrong."""


class TrainingError(JaxdpError):
    """Training cannot start or cannot go on (bad settings, a non-finite loss, a missing run)."""


class CheckpointError(JaxdpError):
    """A checkpoint does not belong to this run, or cannot be read."""


class ProtocolError(JaxdpError, ValueError):
    """A protocol or sweep setting is unknown or holds a value that cannot work."""


class RunBusy(JaxdpError):
    """Another process holds the run's lock (it is training that run now)."""


class ConfigError(JaxdpError, ValueError):
    """A model config field holds a value the model cannot use; the message names the field."""


class DatasetError(JaxdpError):
    """A dataset cannot be built, or a file is not the dataset it should be."""


def first_line(error: BaseException, limit: int | None = 200) -> str:
    """The first non-blank line of `error`'s message (at most `limit` characters; None: all of
    it), or "" if it has none: what a one-line report quotes of an exception it did not raise."""
    return next((line.strip() for line in str(error).splitlines() if line.strip()), "")[:limit]


def warn(message: str) -> None:
    """One ``warning:`` line on stderr (through tqdm, so progress bars stay intact)."""
    import sys

    from tqdm.auto import tqdm

    tqdm.write(f"warning: {message}", file=sys.stderr)
