"""Datasets: padded token arrays of one task's split, saved with a header.

A dataset is one split of one task: ``tokens[count, max_len]`` (``<pad>`` = 0 after each
example), ``prompt_len`` and ``length``. The loss mask (docs/paper.md §3) covers every target token:
positions ``prompt_len <= i < length`` (the CoT, the answer and ``<eos>``, never the question).
How they are drawn from a seed is `jaxdp.tasks.builder`'s.

Files (`save` / `load`): one ``.npz`` per split with a JSON header (format, version, task,
size, options, vocabulary, seed, count, and the content digest of the arrays). Loading checks
the zip's CRCs, the header against the task asked for, the array shapes and dtypes, every token
id and the digest; anything off raises `DatasetError` with a one-line reason. Nothing is ever
regenerated behind the user's back. A dataset's identity (`Dataset.record`) is its header with
that digest, never the path it was read from.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from jaxdp.runtime import files
from jaxdp.runtime.errors import DatasetError
from jaxdp.tasks.base import EOS, TOKEN_DTYPE, Example, Task

FORMAT, VERSION = "jaxdp-dataset", 1


SPLITS = ("train", "test", "valid")


PAIR = SPLITS[:2]  # what `build` draws together; the validation split comes after (`build_validation`)


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    task: Task
    split: str
    seed: int
    tokens: np.ndarray  # [count, task.max_len] uint16
    prompt_len: np.ndarray  # [count] int32
    length: np.ndarray  # [count] int32
    # test split: the digest of the training split it was drawn apart from; validation split:
    # "<train digest>+<test digest>"
    excludes: str | None = None

    def __len__(self) -> int:
        return len(self.length)

    def check(self, where: str = "dataset") -> None:
        """Refuse arrays no task example could give (a one-line `DatasetError` naming `where`):
        shapes, token ids outside the vocabulary, 0 < prompt_len < length <= max_len broken,
        padding or <eos> out of place. `load` runs it on every file; `train` on what it is given."""
        task, n = self.task, len(self.length)
        if (
            self.tokens.ndim != 2
            or self.tokens.shape[0] != n
            or self.prompt_len.shape != (n,)
            or not all(np.issubdtype(a.dtype, np.integer) for a in (self.tokens, self.prompt_len, self.length))
        ):
            raise DatasetError(
                f"{where}: tokens {list(self.tokens.shape)}, prompt_len {list(self.prompt_len.shape)} "
                f"and length {list(self.length.shape)} must be integer arrays [N, T], [N], [N]"
            )
        if not n:
            return
        if self.tokens.min() < 0 or self.tokens.max() >= len(task.vocab):
            bad = self.tokens.max() if self.tokens.max() >= len(task.vocab) else self.tokens.min()
            raise DatasetError(
                f"{where}: token id {bad} is outside the vocabulary of {task} ({len(task.vocab)} tokens)"
            )
        if not ((0 < self.prompt_len) & (self.prompt_len < self.length) & (self.length <= task.max_len)).all():
            raise DatasetError(
                f"{where}: prompt_len/length out of range (need 0 < prompt_len < length <= max_len = {task.max_len})"
            )
        i = np.arange(self.tokens.shape[1])
        eos = self.tokens[np.arange(n), self.length - 1] != task.vocab.index(EOS)
        if self.tokens[i >= self.length[:, None]].any() or eos.any():
            raise DatasetError(f"{where}: padding or <eos> misplaced")

    @property
    def loss_mask(self) -> np.ndarray:
        """[count, max_len] bool: True where the token is a target (CoT, answer, <eos>)."""
        i = np.arange(self.tokens.shape[1])
        return (i >= self.prompt_len[:, None]) & (i < self.length[:, None])

    @functools.cached_property
    def digest(self) -> str:
        """Content hash of the arrays (shapes included): equal digests, equal data."""
        h = hashlib.blake2b(digest_size=16)
        for array in (self.tokens, self.prompt_len, self.length):
            h.update(f"{array.dtype}{array.shape}".encode())
            h.update(np.ascontiguousarray(array).data)
        return h.hexdigest()

    def record(self) -> dict:
        """What identifies this split: task, options, split, seed, count and content digest."""
        task = self.task
        return {
            "task": task.name,
            "size": task.size,
            "options": task.options(),
            "split": self.split,
            "seed": self.seed,
            "count": len(self),
            "digest": self.digest,
        }

    def example(self, index: int) -> Example:
        ids = self.tokens[index, : self.length[index]]
        tokens = self.task.decode(ids)
        return Example(tokens[: self.prompt_len[index]], tokens[self.prompt_len[index] :])


def _header(dataset: Dataset) -> dict:
    task = dataset.task
    return {
        "format": FORMAT,
        "version": VERSION,
        "task": task.name,
        "size": task.size,
        "options": task.options(),
        "split": dataset.split,
        "seed": dataset.seed,
        "count": len(dataset),
        "max_len": task.max_len,
        "vocab": list(task.vocab),
        "digest": dataset.digest,
        "excludes": dataset.excludes,
    }


def save(dataset: Dataset, path: str | os.PathLike) -> Path:
    """Write `dataset` to `path` atomically (a partial file never takes the final name)."""
    with files.replacing(path, "wb") as f:
        np.savez(
            f,
            header=np.array(json.dumps(_header(dataset))),
            tokens=dataset.tokens,
            prompt_len=dataset.prompt_len,
            length=dataset.length,
        )
    return Path(path)


def load(path: str | os.PathLike, task: Task | None = None, split: str | None = None) -> Dataset:
    """Read a dataset written by `save`, refusing anything corrupt or not matching `task`/`split`."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no dataset file here (build one with `python -m jaxdp data`)")
    if not zipfile.is_zipfile(path):
        raise DatasetError(f"{path}: corrupt, truncated or not a {FORMAT} file (not a readable .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as z:
            if set(z.files) != {"header", "tokens", "prompt_len", "length"}:
                raise DatasetError(f"{path}: not a {FORMAT} file (holds {sorted(z.files)})")
            header = json.loads(str(z["header"]))
            file_task = _check_header(path, header, task, split)
            arrays = z["tokens"], z["prompt_len"], z["length"]
    except DatasetError:
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, KeyError, TypeError) as e:
        raise DatasetError(f"{path}: corrupt or unreadable dataset file ({type(e).__name__}: {e})") from None
    _check_arrays(path, file_task, header["count"], *arrays)
    dataset = Dataset(file_task, header["split"], header["seed"], *arrays, excludes=header.get("excludes"))
    dataset.check(str(path))
    if "digest" in header and header["digest"] != dataset.digest:  # files of jaxdp <= 0.1 have none
        raise DatasetError(f"{path}: content does not match the digest in its header (altered or corrupt)")
    return dataset


def _check_header(path: Path, header: dict, task: Task | None, split: str | None) -> Task:
    from jaxdp.tasks import get

    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise DatasetError(f"{path}: not a {FORMAT} file")
    if header.get("version") != VERSION:
        raise DatasetError(f"{path}: {FORMAT} version {header.get('version')}, this jaxdp reads version {VERSION}")
    try:
        file_task = get(header["task"], header["size"], **header["options"])
    except ValueError as e:
        raise DatasetError(f"{path}: header names a task this jaxdp cannot make ({e})") from None
    if task is not None and file_task != task:
        raise DatasetError(f"{path}: holds {file_task}, expected {task}")
    if header.get("split") not in SPLITS or (split is not None and header["split"] != split):
        raise DatasetError(f"{path}: holds split {header.get('split')!r}, expected {split or SPLITS}")
    if header.get("vocab") != list(file_task.vocab) or header.get("max_len") != file_task.max_len:
        raise DatasetError(f"{path}: vocabulary or max_len differ from this jaxdp's {file_task}; rebuild it")
    return file_task


def _check_arrays(path: Path, task: Task, count, tokens, prompt_len, length) -> None:
    expected = (
        ("tokens", tokens, TOKEN_DTYPE, (count, task.max_len)),
        ("prompt_len", prompt_len, np.int32, (count,)),
        ("length", length, np.int32, (count,)),
    )
    for name, array, dtype, shape in expected:
        if array.dtype != dtype or array.shape != shape:
            raise DatasetError(
                f"{path}: {name} is {array.dtype}{list(array.shape)}, expected {np.dtype(dtype)}{list(shape)}"
            )


def validation_excludes(train: Dataset, test: Dataset) -> str:
    """What a validation set drawn apart from `train` and `test` records as ``excludes``."""
    return f"{train.digest}+{test.digest}"
