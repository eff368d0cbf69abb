"""Checkpoints of a training run with orbax's `CheckpointManager`, verified on restore.

A checkpoint is one orbax step with two items, written together: ``state`` (parameters, optimizer
state and the dropout RNG state; the step fixes the data position, see `jaxdp.training.batches.batch_indices`)
and ``meta`` (JSON): the digest of the run it belongs to (`jaxdp.training.protocol.digest`), a content
digest of the state as saved, and the training loop's bookkeeping (losses not yet logged, the
last logged loss). `Checkpoints.restore_latest` reads the newest checkpoint and checks it: one of
another run is refused; one that is unreadable (truncated), altered (overwritten bytes, a
flipped bit: the content digest differs) or not finite is moved aside to
``corrupt-checkpoints/`` with a one-line warning, and the one before it is tried. Saving refuses
non-finite parameters, so a checkpoint named as the last good one always exists and is finite.

``config.json`` beside ``checkpoints/`` records the run's settings; `check_run_config` compares
it field by field, so a folder of another run is refused with the differing fields named.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from jaxdp.runtime import faults, files
from jaxdp.runtime.errors import CheckpointError, RunBusy, TrainingError, warn


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary file, flush it to disk and rename it over `path`, so readers
    never see half a file, even after a power cut."""
    try:
        files.write_json(path, data)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot write ({e.strerror})") from None


def _differences(old: Any, new: Any, prefix: str = "", ignore: frozenset = frozenset()) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            if f"{prefix}{key}" not in ignore:
                out += _differences(old.get(key, "<missing>"), new.get(key, "<missing>"), f"{prefix}{key}.", ignore)
        return out
    return [] if old == new else [f"{prefix[:-1]}: {old!r} in the run, {new!r} now"]


def check_run_config(run_dir: Path, config: dict, ignore: frozenset = frozenset()) -> None:
    """Refuse if ``run_dir/config.json`` records a different `config` (dotted keys in `ignore`
    may differ), then record `config` there. An unreadable config.json is written again, with a
    warning: the checkpoints carry the run's digest and are checked against it on restore."""
    path = run_dir / "config.json"
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            warn(
                f"{path} is unreadable ({type(e).__name__}); writing it again from these settings "
                "(the checkpoints are checked against them)"
            )
            old = None
        diff = [] if old is None else _differences(old, json.loads(json.dumps(config)), ignore=ignore)
        if diff:
            raise CheckpointError(f"{run_dir} holds a run of another config ({'; '.join(diff[:4])}); use another --out")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CheckpointError(f"{run_dir}: cannot create the run folder ({e.strerror})") from None
    write_json_atomic(path, config)


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir/lock`` while a process works on the run: a second process (the same SLURM
    task requeued, a shard started twice) gets `RunBusy` instead of writing beside it. The kernel
    releases the lock when the holder dies, even by SIGKILL."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        handle = open(run_dir / "lock", "a+")
    except OSError as e:
        raise CheckpointError(f"{run_dir}: cannot create the run folder or its lock ({e.strerror})") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            raise RunBusy(
                f"{run_dir} is in use by another process (pid {holder}), which is training this run now"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


def _is_key(x) -> bool:
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def to_saveable(tree):
    """Typed PRNG keys become their raw uint32 data (orbax stores plain arrays)."""
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)


def from_saveable(tree, like):
    """Inverse of `to_saveable`, using `like` (the live state) to know which leaves were keys."""
    return jax.tree.map(
        lambda x, ref: jax.random.wrap_key_data(x, impl=jax.random.key_impl(ref)) if _is_key(ref) else x, tree, like
    )


def _host(leaf) -> np.ndarray:
    if isinstance(leaf, jax.Array):  # replicated: any local shard is the whole array
        leaf = leaf.addressable_data(0)
    return np.asarray(leaf)


def inspect(tree) -> tuple[str, bool]:
    """(content digest, whether every float is finite) of a state, as `save` stores it."""
    h, finite = hashlib.blake2b(digest_size=16), True
    for path, leaf in jax.tree_util.tree_flatten_with_path(to_saveable(tree))[0]:
        a = _host(leaf)
        h.update(f"{jax.tree_util.keystr(path)}{a.dtype}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
        if np.issubdtype(a.dtype, np.floating):
            finite &= bool(np.isfinite(a).all())
    return h.hexdigest(), finite


class Checkpoints:
    """`save(step, state, meta)`, `restore_latest(like)` under ``run_dir/checkpoints``, for the
    run whose digest is `run_digest`."""

    def __init__(self, run_dir: Path, keep: int = 2, run_digest: str | None = None):
        self.run_dir = Path(run_dir)
        self.root = (self.run_dir / "checkpoints").absolute()
        self.run_digest = run_digest
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
        try:
            self.manager = ocp.CheckpointManager(self.root, options=options)
        except OSError as e:
            raise CheckpointError(f"{self.root}: cannot open the checkpoint folder ({e.strerror})") from None

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def save(self, step: int, state, meta: dict | None = None) -> None:
        """Write a checkpoint of `state` at `step`; refuses non-finite parameters."""
        content, finite = inspect(state)
        if not finite:
            good = self.steps()
            raise TrainingError(
                f"the parameters became non-finite by step {step}; "
                + (
                    f"the last good checkpoint is step {good[-1]} in {self.root}"
                    if good
                    else "no checkpoint was saved before that"
                )
            )
        record = {"run": self.run_digest, "content": content, "step": step, **(meta or {})}
        args = ocp.args.Composite(state=ocp.args.StandardSave(to_saveable(state)), meta=ocp.args.JsonSave(record))
        try:
            self.manager.save(step, args=args, force=True)
            faults.point("checkpoint.writing")
            self.manager.wait_until_finished()
        except Exception as e:  # a full disk or a lost mount, raised by orbax in several types
            raise CheckpointError(
                f"{self.root}: cannot write the checkpoint of step {step} ({type(e).__name__}: "
                f"{str(e).splitlines()[0][:160] if str(e) else ''}); the earlier ones are kept"
            ) from None
        faults.point("checkpoint.written")

    def _read(self, step: int, like) -> tuple[Any, dict]:
        """One checkpoint, checked; raises CheckpointError (another run) or ValueError (corrupt)."""
        try:
            meta = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        except Exception as e:  # orbax raises many types for a damaged step
            raise ValueError(f"its record is unreadable ({type(e).__name__})") from None
        if self.run_digest is not None and meta.get("run") != self.run_digest:
            raise CheckpointError(
                f"{self.root} holds checkpoints of another run (digest {meta.get('run')}, this "
                f"run is {self.run_digest}); use another --out"
            )
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, to_saveable(like))
        try:
            restored = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))
        except Exception as e:
            raise ValueError(f"its files are unreadable (truncated or damaged: {type(e).__name__})") from None
        state = from_saveable(restored["state"], like)
        content, finite = inspect(state)
        if content != meta.get("content"):
            raise ValueError("its contents do not match their digest (altered or corrupt)")
        if not finite:
            raise ValueError("it holds non-finite parameters")
        return state, meta

    def restore_latest(self, like) -> tuple[int, Any, dict] | None:
        """The newest good checkpoint as (step, state, meta), moving bad ones aside; None if
        there is none at all; CheckpointError if there are some and none is good."""
        problems = []
        for step in reversed(self.steps()):
            try:
                state, meta = self._read(step, like)
            except ValueError as e:
                problems.append(f"step {step}: {e}")
                self._move_aside(step)
                continue
            if problems:
                warn(
                    f"{self.root}: {'; '.join(problems)}; moved to {self.run_dir / 'corrupt-checkpoints'}, "
                    f"resuming from step {step}"
                )
            return step, state, meta
        if problems:
            raise CheckpointError(
                f"{self.root}: no good checkpoint left ({'; '.join(problems)}); the bad ones "
                f"are in {self.run_dir / 'corrupt-checkpoints'}; rerun to start from step 0"
            )
        return None

    def _move_aside(self, step: int) -> None:
        aside = self.run_dir / "corrupt-checkpoints"
        aside.mkdir(exist_ok=True)
        shutil.move(str(self.root / str(step)), str(aside / f"{step}-{time.strftime('%Y%m%d-%H%M%S')}"))
        self.manager.reload()

    def close(self) -> None:
        self.manager.close()
