"""Failpoints for the fault-injection tests (``tests/faults/``).

With ``JAXDP_FAULT="<point>@<n>"`` in the environment, the n-th time the code passes
`point("<point>")` the process kills itself with SIGKILL: nothing runs after it (no handler, no
``finally``), as with a power cut or the kernel's OOM killer. ``"<point>@<n>:SIGTERM"`` (or any
other signal's name) sends that signal instead, as a scheduler or Ctrl-C would, at a moment the
test chooses. Unset, which is always the case outside those tests, a point costs one
comparison. The points:

* ``train.compile``: just before the first training step of a call (which compiles it);
* ``train.step``: after a training step (before its logging and checkpointing);
* ``checkpoint.writing``: while orbax writes a checkpoint in the background;
* ``checkpoint.written``: after a checkpoint is complete;
* ``metrics.torn``: halfway through writing a metrics line (`torn` writes the first half);
* ``dataset.chunk``: after a chunk of examples is generated;
* ``dataset.between_splits``: after ``train.npz`` is written and before ``test.npz``;
* ``files.replacing``: with a file's new content written to its temporary name, before the
  rename (`jaxdp.runtime.files`: tables, figures, CSVs, JSON, datasets).
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("JAXDP_FAULT", "")
_NAME, _, _AT = _SPEC.partition("@")
_AT, _, _SIGNAL = _AT.partition(":")
_COUNT = int(_AT or 1) if _SPEC else 0
_seen = 0


def armed(name: str) -> bool:
    """Whether this pass of point `name` is the one to fail at (counts the pass)."""
    global _seen
    if not _SPEC or name != _NAME:
        return False
    _seen += 1
    return _seen == _COUNT


def die() -> None:
    """Send this process the armed signal (SIGKILL unless the spec names another)."""
    os.kill(os.getpid(), getattr(signal, _SIGNAL or "SIGKILL"))


def point(name: str) -> None:
    if armed(name):
        die()
