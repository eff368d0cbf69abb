"""Files a command writes for a user, written so that no reader ever sees half of one, and the
lock that lets processes share a folder.

`replacing(path)` opens a temporary file beside `path` (its name unique to this process), hands
it to the caller, flushes it to disk and renames it over `path`: a kill at any moment leaves
either the old file or the new one, never a torn or empty one, and two processes writing the
same file leave one whole copy. `write_text`, `write_json` and `write_figure` are built on it;
`hold(lock_path)` waits for an exclusive lock (the kernel drops it when its holder dies, even by
SIGKILL).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from jaxdp.runtime import faults


@contextlib.contextmanager
def replacing(path: str | os.PathLike, mode: str = "w", **open_kwargs) -> Iterator[IO]:
    """A handle to a temporary file that takes `path`'s name when the block ends without error
    (and is removed if it raises)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, mode, **open_kwargs) as handle:
            yield handle
            faults.point("files.replacing")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> Path:
    with replacing(path) as handle:
        handle.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_figure(fig, path: str | os.PathLike, **savefig_kwargs) -> Path:
    """`fig.savefig` into `path` atomically; the format is the suffix's (``.png``, ``.pdf``, …)."""
    path = Path(path)
    with replacing(path, "wb") as handle:
        fig.savefig(handle, format=path.suffix.lstrip(".") or "png", **savefig_kwargs)
    return path


@contextlib.contextmanager
def hold(lock_path: str | os.PathLike, waiting: str | None = None) -> Iterator[None]:
    """Wait for, then hold, an exclusive lock on `lock_path` (created if missing); `waiting` is
    printed (stderr) if another process holds it."""
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                print(waiting, file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_json(path: Path) -> dict | None:
    """A JSON object from `path`, or None if it is missing or unreadable."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
