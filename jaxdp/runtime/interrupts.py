"""Interruptions: SIGTERM handled like Ctrl-C, and a training loop that stops only at safe points.

SLURM and most schedulers send SIGTERM before they kill a preempted job; by default Python dies
of it at once and saves nothing. `sigterm_as_interrupt` (used by every command line entry point)
turns it into `Interrupted`, a `KeyboardInterrupt`, so it unwinds like Ctrl-C. `deferred` is for
the training loop: inside it, SIGINT and SIGTERM only raise a flag that the loop reads between
steps, where the parameters, the step count and the pending metrics agree, so the checkpoint it
then saves and the metrics it has logged always match. A compile in progress (the first step)
finishes before the loop stops, and a second signal stops at once.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}


class Interrupted(KeyboardInterrupt):
    """A run stopped by a signal; ``signal_name`` is "SIGINT" or "SIGTERM"."""

    def __init__(self, signal_name: str = "SIGINT"):
        super().__init__(signal_name)
        self.signal_name = signal_name

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.signal_name, 130)


def exit_code(exc: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 143 for SIGTERM (the shell's 128 + signal number)."""
    return exc.exit_code if isinstance(exc, Interrupted) else 130


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside: SIGTERM raises `Interrupted("SIGTERM")` like Ctrl-C does (main thread only)."""
    if not _main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class StopFlag:
    """Set by the first SIGINT/SIGTERM inside `deferred`; `signal_name` is None until then."""

    signal_name: str | None = None

    def check(self) -> None:
        """Raise `Interrupted` if a signal came."""
        if self.signal_name is not None:
            raise Interrupted(self.signal_name)


@contextlib.contextmanager
def deferred() -> Iterator[StopFlag]:
    """Inside: the first SIGINT or SIGTERM sets the flag returned; a second one raises at once.
    Outside the main thread signals cannot be caught, and the flag never rises."""
    flag = StopFlag()
    if not _main_thread():
        yield flag
        return

    def note(signum, frame):
        if flag.signal_name is not None:
            _raise(signum, frame)
        flag.signal_name = signal.Signals(signum).name

    previous = {s: signal.signal(s, note) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
