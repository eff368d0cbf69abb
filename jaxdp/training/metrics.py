"""``metrics.jsonl``: one JSON object per logging step of a training run.

What is logged always matches what is checkpointed: a run resumed from the checkpoint at step s
drops the lines logged after s (they are logged again, with the same losses, since the
checkpoint carries the losses not yet logged), and a torn last line (a kill or a full disk in
the middle of a write) is dropped too. Each such repair rewrites the file atomically. A line is
appended with a single ``write`` call, so an interruption between lines never leaves half of one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from jaxdp.runtime import faults, files
from jaxdp.runtime.errors import CheckpointError, warn
from jaxdp.training import loggers


def _record(line: str) -> dict | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) and isinstance(record.get("step"), int) else None


def read(path: Path) -> list[dict]:
    """The records of a metrics file, in order. A torn last line (no newline after it: a kill
    or a full disk mid-write) is dropped quietly; any other line that is not a record is dropped
    with a warning naming the file and the line."""
    if not path.exists():
        return []
    try:
        rows = path.read_text(errors="replace").split("\n")
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror})") from None
    records, bad = [], []
    for number, line in enumerate(rows, 1):
        if line.strip():
            record = _record(line)
            if record is not None:
                records.append(record)
            elif number < len(rows):  # the last row has no newline after it only when torn
                bad.append(number)
    if bad:
        warn(f"{path}: dropped line(s) {', '.join(map(str, bad[:5]))}, which are not metrics records")
    return records


class MetricsLog:
    """Appends records to `path`, after keeping only the valid lines with step <= `resume_step`;
    each record also goes to every one of `mirrors` (`jaxdp.training.loggers`), after the file."""

    def __init__(self, path: Path, resume_step: int, mirrors: Sequence = ()):
        """Takes ownership of `mirrors`: they are closed by `close`, or here if the file cannot
        be opened."""
        self.path, self.mirrors = path, list(mirrors)
        try:
            kept = [r for r in read(path) if r["step"] <= resume_step]
            text = "".join(json.dumps(r) + "\n" for r in kept)
            if not path.exists() or path.read_text(errors="replace") != text:
                files.write_text(path, text)
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        except BaseException:
            loggers.close_all(self.mirrors)
            raise

    def write(self, record: dict) -> None:
        data = (json.dumps(record) + "\n").encode()
        if faults.armed("metrics.torn"):
            os.write(self.fd, data[: len(data) // 2])
            faults.die()
        os.write(self.fd, data)
        for mirror in self.mirrors:
            mirror.write(record)

    def close(self) -> None:
        try:
            os.close(self.fd)
        finally:
            loggers.close_all(self.mirrors)
