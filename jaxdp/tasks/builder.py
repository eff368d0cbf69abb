"""Building datasets deterministically from a seed (`build`, `build_to_dir`, `build_validation`).

Examples are drawn in fixed chunks, chunk k of stream s from ``numpy.random.default_rng([seed,
s, k])``, so the result depends only on the seed, whatever the number of worker processes.
Examples are deduplicated by prompt (the target is a function of it), keeping first occurrences;
the test set excludes every training prompt. The validation set (`build_validation`, what every
choice of a study reads: learning rate, early stopping, the search for the smallest D) is drawn
from its own stream and excludes every training and test prompt; its first n examples are the
same whatever count is asked for, so a dataset built before it existed gets one beside it
(``valid-n=<count>.npz``) with its train and test files untouched. A task with a
`train_mixture` (Arithmetic's ``--under``) first gets its components' draws, in proportion to
their weights and deduplicated, then is topped up with its own examples.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import hashlib
import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from jaxdp.runtime import capacity, faults, files
from jaxdp.tasks.base import TOKEN_DTYPE, EncodedBatch, Task
from jaxdp.tasks.dataset import PAIR, Dataset, DatasetError, load, save, validation_excludes

CHUNK = 1024  # examples per generation chunk (part of the seed -> data mapping: keep fixed)
_TRAIN, _TEST, _MIXTURE = 0, 1, 2  # stream ids; mixture component k uses _MIXTURE + k


_VALID = 1_000_003  # the validation stream: past any mixture component's


_STALL_CHUNKS = 64  # chunks in a row without a new example before giving up


def _worker_start() -> None:
    """In each generator process: leave Ctrl-C to the parent (which shuts the pool down), and die
    with the parent (Linux PR_SET_PDEATHSIG), so a killed build leaves no process behind."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):  # not Linux: the pool's own shutdown is all there is
        pass
    if os.getppid() == 1:  # the parent died before the line above
        os._exit(1)


def _chunk(task: Task, seed: int, stream: int, index: int) -> EncodedBatch:
    return task.sample_arrays(np.random.default_rng([seed, stream, index]), CHUNK)


def _batches(task: Task, seed: int, stream: int, pool, ahead: int = 0) -> Iterator[EncodedBatch]:
    """Chunks 0, 1, 2, … of a stream, `ahead` of them computed in advance by `pool` (or here,
    one at a time, if None)."""
    index = 0
    if pool is None:
        while True:
            yield _chunk(task, seed, stream, index)
            index += 1
    pending: collections.deque = collections.deque()
    try:
        while True:
            while len(pending) < ahead:
                pending.append(pool.submit(_chunk, task, seed, stream, index))
                index += 1
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


def _prompt_key(prompt: np.ndarray) -> bytes:
    return hashlib.blake2b(prompt.tobytes(), digest_size=16).digest()


class _Collector:
    """Keeps the first occurrence of each prompt, skipping prompts in `exclude`."""

    def __init__(self, exclude: set[bytes] = frozenset()):
        self.keys: set[bytes] = set()
        self.exclude = exclude
        self.parts: list[EncodedBatch] = []
        self.count = 0

    @staticmethod
    def prompt_keys(tokens: np.ndarray, prompt_len: np.ndarray) -> set[bytes]:
        """The dedup keys of each row's prompt, as `add` computes them."""
        return {_prompt_key(tokens[r, : prompt_len[r]]) for r in range(len(prompt_len))}

    def add(self, batch: EncodedBatch, limit: int) -> int:
        keep = []
        for r in range(len(batch)):
            if len(keep) >= limit:
                break
            key = _prompt_key(batch.tokens[r, : batch.prompt_len[r]])
            if key not in self.keys and key not in self.exclude:
                self.keys.add(key)
                keep.append(r)
        if keep:
            self.parts.append(EncodedBatch(batch.tokens[keep], batch.prompt_len[keep], batch.length[keep]))
            self.count += len(keep)
        return len(keep)

    def arrays(self, max_len: int) -> EncodedBatch:
        if not self.parts:
            return EncodedBatch(np.zeros((0, max_len), TOKEN_DTYPE), np.zeros(0, np.int32), np.zeros(0, np.int32))
        cat = lambda name: np.concatenate([getattr(p, name) for p in self.parts])  # noqa: E731
        return EncodedBatch(cat("tokens"), cat("prompt_len"), cat("length"))


def _pad_to(batch: EncodedBatch, max_len: int) -> EncodedBatch:
    """Widen a shorter mixture component's batch to the task's max_len."""
    pad = max_len - batch.tokens.shape[1]
    return batch if pad == 0 else dataclasses.replace(batch, tokens=np.pad(batch.tokens, ((0, 0), (0, pad))))


def _fill(collector: _Collector, task: Task, seed: int, stream: int, want: int, pool, ahead: int, bar) -> None:
    """Add distinct examples of `task` until the collector holds `want`."""
    if collector.count >= want:  # nothing to draw: start no generator, queue no chunk
        return
    stalled = draws = 0
    for batch in _batches(task, seed, stream, pool, ahead):
        draws += len(batch)
        added = collector.add(batch, want - collector.count)
        bar.update(added)
        faults.point("dataset.chunk")
        stalled = 0 if added else stalled + 1
        if stalled >= _STALL_CHUNKS:
            raise DatasetError(
                f"{task}: only {collector.count} distinct examples after {draws} draws, "
                f"{want} asked for; this size has too few distinct instances"
            )
        if collector.count >= want:
            return


def build(
    task: Task,
    train: int,
    test: int,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
) -> tuple[Dataset, Dataset]:
    """Build the (train, test) datasets of `task`; see the module docstring.

    workers: processes to generate with (default: all cores for 50,000 examples or more, else
    none). The result does not depend on it.
    """
    workers = check_request(task, train, test, seed, workers)
    try:
        return _build(task, train, test, seed, workers, progress)
    except MemoryError:
        raise DatasetError(
            f"{task}: out of memory building {train} + {test} examples; lower the number of examples or of workers"
        ) from None


def check_request(task: Task, train: int, test: int, seed: int, workers: int | None) -> int:
    """Refuse a build this machine cannot do (counts, memory, workers); the workers to use."""
    for field, value in (("train", train), ("test", test), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise DatasetError(f"{field} must be a non-negative integer, got {value!r}")
    capacity.check_dataset_memory(task, train + test, DatasetError)
    cores = os.cpu_count() or 1
    if workers is None:
        workers = cores if train + test >= 50_000 else 0
    if not 0 <= workers <= 4 * cores:
        raise DatasetError(f"workers: must be in [0, {4 * cores}] (4 per core of this machine), got {workers}")
    return workers


def _build(task: Task, train: int, test: int, seed: int, workers: int, progress: bool) -> tuple[Dataset, Dataset]:
    bar = tqdm(total=train + test, unit="ex", desc=f"{task.name}({task.size})", disable=not progress)
    pool, ahead = None, 2 * workers
    if workers > 1:
        pool = concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_start
        )
    try:
        train_set = _Collector()
        mixture = task.train_mixture()
        total_weight = sum(w for _, w in mixture)
        for k, (component, weight) in enumerate(mixture):
            draws = int(train * weight / total_weight)
            batches = _batches(component, seed, _MIXTURE + k, pool, ahead)
            while draws > 0 and train_set.count < train:
                batch = next(batches)
                batch = EncodedBatch(batch.tokens[:draws], batch.prompt_len[:draws], batch.length[:draws])
                draws -= len(batch)
                bar.update(train_set.add(_pad_to(batch, task.max_len), train - train_set.count))
            batches.close()
        _fill(train_set, task, seed, _TRAIN, train, pool, ahead, bar)
        test_set = _Collector(exclude=train_set.keys)
        _fill(test_set, task, seed, _TEST, test, pool, ahead, bar)
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    train_data = Dataset(task, "train", seed, *dataclasses.astuple(train_set.arrays(task.max_len)))
    test_data = Dataset(
        task, "test", seed, *dataclasses.astuple(test_set.arrays(task.max_len)), excludes=train_data.digest
    )
    return train_data, test_data


def build_to_dir(
    task: Task,
    out: str | os.PathLike,
    train: int,
    test: int,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
    force: bool = False,
) -> tuple[Dataset, Dataset, bool]:
    """`build` and `save` to ``out/train.npz`` and ``out/test.npz``; returns (train, test, built).

    If both files exist and hold exactly this request they are loaded instead (built = False).
    Files that differ or are corrupt are refused unless `force`. If one split holds this request
    and the other is missing (a build cut off between the two), the build is run again and only
    the missing split is written, after checking that the one present is what it would write.

    Builds into one folder take turns (a lock file ``.<name>.lock`` beside it): a second process
    waits, then finds the first one's dataset and loads it, or refuses it if it asked for another.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DatasetError(f"{out}: exists and is not a folder; choose another --out")
    check_request(task, train, test, seed, workers)
    with _building(out):
        return _build_or_load(task, out, train, test, seed, workers, progress, force)


def _building(out: Path):
    """The build lock of dataset folder `out` (``.<name>.lock`` beside it): builds take turns."""
    return files.hold(
        out.with_name(f".{out.name}.lock"), waiting=f"{out}: another process is building a dataset here; waiting for it"
    )


def _build_or_load(
    task: Task, out: Path, train: int, test: int, seed: int, workers: int | None, progress: bool, force: bool
) -> tuple[Dataset, Dataset, bool]:
    paths = [out / f"{split}.npz" for split in PAIR]
    present = [p.exists() for p in paths]
    if not force and any(present):
        loaded = [load(p, task, split) if here else None for p, split, here in zip(paths, PAIR, present)]
        have = [(len(d), d.seed) if d is not None else "missing" for d in loaded]
        want = [(train, seed), (test, seed)]
        if any(h not in (w, "missing") for h, w in zip(have, want)):
            raise DatasetError(
                f"{out}: already holds {task} with (count, seed) train {have[0]}, test {have[1]}; "
                f"asked for train ({train}, {seed}), test ({test}, {seed}); use --force or another --out"
            )
        if all(present):
            return loaded[0], loaded[1], False
    datasets = build(task, train, test, seed=seed, workers=workers, progress=progress)
    for dataset, path, here in zip(datasets, paths, present):
        if here and not force:
            if load(path, task).digest != dataset.digest:
                raise DatasetError(f"{path}: differs from what this build writes; use --force or another --out")
            continue
        try:
            save(dataset, path)
        except OSError as e:
            raise DatasetError(f"{path}: cannot write ({e.strerror})") from None
        faults.point("dataset.between_splits")
    return datasets[0], datasets[1], True


def build_validation(train: Dataset, test: Dataset, count: int, progress: bool = False) -> Dataset:
    """`count` examples of the training set's task, from the validation stream of its seed,
    none of whose prompts is in `train` or `test`; the first n are the same for any count >= n."""
    task = train.task
    capacity.check_dataset_memory(task, count, DatasetError)
    collector = _Collector(
        exclude=_Collector.prompt_keys(train.tokens, train.prompt_len)
        | _Collector.prompt_keys(test.tokens, test.prompt_len)
    )
    with tqdm(total=count, unit="ex", desc=f"{task.name}({task.size}) validation", disable=not progress) as bar:
        _fill(collector, task, train.seed, _VALID, count, None, 0, bar)
    arrays = dataclasses.astuple(collector.arrays(task.max_len))
    return Dataset(task, "valid", train.seed, *arrays, excludes=validation_excludes(train, test))


def validation_to_dir(
    out: str | os.PathLike, train: Dataset, test: Dataset, count: int, progress: bool = False
) -> Dataset:
    """The validation set of ``out``'s (train, test) pair: ``out/valid-n=<count>.npz``, built
    and saved the first time (under the folder's build lock), loaded and checked afterwards."""
    out = Path(out)
    path = out / f"valid-n={count}.npz"
    with _building(out):
        if path.exists():
            valid = load(path, train.task, "valid")
            if len(valid) != count or valid.excludes != validation_excludes(train, test):
                raise DatasetError(f"{path}: was not drawn apart from this folder's train and test sets; delete it")
            return valid
        valid = build_validation(train, test, count, progress)
        save(valid, path)
        return valid
