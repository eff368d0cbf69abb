"""Checkpoints of a training run with orbax's `CheckpointManager`: parameters, optimizer state,
the dropout RNG state and the step (which fixes the data position, see `train.batch_indices`).

A checkpoint directory belongs to one run configuration: `config.json` beside it is written on
the first save and every restore compares it field by field, so a checkpoint of another config
is refused with the differing fields named instead of being partially loaded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

from jaxdp.errors import CheckpointError


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary file and rename it over `path`, so readers never see half."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


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
    may differ), then record `config` there."""
    path = run_dir / "config.json"
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CheckpointError(f"{path}: unreadable ({e}); restore it or use another --out") from None
        diff = _differences(old, json.loads(json.dumps(config)), ignore=ignore)
        if diff:
            raise CheckpointError(f"{run_dir} holds a run of another config ({'; '.join(diff[:4])}); "
                                  "use another --out or remove the folder")  # fmt: skip
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, config)


def _is_key(x) -> bool:
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def to_saveable(tree):
    """Typed PRNG keys become their raw uint32 data (orbax stores plain arrays)."""
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)


def from_saveable(tree, like):
    """Inverse of `to_saveable`, using `like` (the live state) to know which leaves were keys."""
    return jax.tree.map(lambda x, ref: jax.random.wrap_key_data(x, impl=jax.random.key_impl(ref))
                        if _is_key(ref) else x, tree, like)  # fmt: skip


class Checkpoints:
    """`save(step, state)`, `latest_step()`, `restore(step, like)` under ``run_dir/checkpoints``."""

    def __init__(self, run_dir: Path, keep: int = 2):
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
        self.manager = ocp.CheckpointManager((Path(run_dir) / "checkpoints").absolute(), options=options)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state) -> None:
        self.manager.save(step, args=ocp.args.StandardSave(to_saveable(state)), force=True)
        self.manager.wait_until_finished()

    def restore(self, step: int, like):
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, to_saveable(like))
        try:
            restored = self.manager.restore(step, args=ocp.args.StandardRestore(abstract))
        except Exception as e:  # orbax raises several types for a mismatched tree
            raise CheckpointError(f"checkpoint at step {step} does not fit this model ({type(e).__name__}: "
                                  f"{str(e)[:200]})") from None  # fmt: skip
        return from_saveable(restored, like)

    def close(self) -> None:
        self.manager.close()
