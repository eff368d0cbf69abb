"""One jax device per CPU core, and the batch meshes that put them to work.

On a CPU, one XLA program keeps a 2-core machine busy only part of the time: its many small
elementwise fusions (layer norms, GeLU, softmax, dropout, AdamW) and its small matrix products
run with little overlap. Split over one jax device per core, the batch's halves run concurrently
(data parallel within one process), which speeds up both the training step and greedy decoding
(measured by `benchmarks/vs_torch.py`; the numbers are in benchmarks/RESULTS.md).

Nothing the model computes changes: the loss is over the whole batch, dropout masks are functions
of each element's global index (`jaxdp.models.dropout`) and decoding is row by row. Only the
order of the float sums in a gradient differs (the data-parallel test: the same loss curve on 1
and 8 devices to 1e-5).

The commands (``python -m jaxdp``, ``python -m experiments.*``, the benchmarks) call
`use_cpu_cores` first (`use_cpu_cores_for_command`); in a notebook or script call it right after
``import jax``. Setting ``JAX_NUM_CPU_DEVICES`` (``=1`` turns it off) or XLA's
``--xla_force_host_platform_device_count`` wins over it. With ``JAXDP_KEEP_HOST_MEMORY=1`` it also
has glibc keep the host memory XLA frees after each step for the next one
(`jaxdp.runtime.host_memory`: faster at large shapes, slower on small ones, so opt-in).
"""

from __future__ import annotations

import os
import sys

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxdp.runtime.host_memory import reuse_freed_memory

#: At most this many CPU devices by default: measured on 2 cores only; a batch split much thinner
#: than a few rows per device would spend its time in the gradient's all-reduce.
MAX_DEFAULT_CPU_DEVICES = 8


def cpu_devices_set_by_user() -> bool:
    """True when the environment or jax's config already chose the CPU device count."""
    return (
        "JAX_NUM_CPU_DEVICES" in os.environ
        or "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "")
        or jax.config.jax_num_cpu_devices != -1
    )


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def use_cpu_cores(count: int | None = None) -> int | None:
    """Make jax's CPU backend `count` devices (default: one per available core, at most
    `MAX_DEFAULT_CPU_DEVICES`). Returns the count set, or None when nothing was changed: by
    default, when the user chose a count (module docstring) or jax has already run a computation.
    An explicit `count` after jax's first computation raises RuntimeError. Either way, first has
    glibc reuse the host memory XLA frees where ``JAXDP_KEEP_HOST_MEMORY=1`` asks for it
    (`jaxdp.runtime.host_memory.reuse_freed_memory`; another value than 0 or 1 raises ValueError)."""
    reuse_freed_memory()
    if count is None:
        if cpu_devices_set_by_user():
            return None
        count = min(available_cores(), MAX_DEFAULT_CPU_DEVICES)
        try:
            jax.config.update("jax_num_cpu_devices", count)
        except RuntimeError:  # the backends have started: leave them as they are
            return None
        return count
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"use_cpu_cores: count must be a positive int, got {count!r}")
    jax.config.update("jax_num_cpu_devices", count)
    return count


def use_cpu_cores_for_command(prog: str) -> int | None:
    """`use_cpu_cores()` at the start of a command line: a bad ``JAXDP_KEEP_HOST_MEMORY`` is
    refused in one line on stderr with exit status 2, as a bad flag is."""
    try:
        return use_cpu_cores()
    except ValueError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def batch_devices(batch: int, devices=None) -> list:
    """The first k of `devices` (default: this process's devices of the default backend), k the
    largest count that divides `batch`, so that every device gets the same number of rows."""
    devices = list(jax.local_devices() if devices is None else devices)
    k = max(n for n in range(1, len(devices) + 1) if batch % n == 0)
    return devices[:k]


def batch_mesh(devices) -> Mesh:
    """A 1-D ``data`` mesh over `devices`."""
    return Mesh(np.array(devices), ("data",))


def replicate(tree, mesh: Mesh):
    """`tree` with every array on every device of `mesh`."""
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def shard_rows(array, mesh: Mesh) -> jax.Array:
    """`array` split along its first axis over the ``data`` axis of `mesh` (one process)."""
    return jax.device_put(array, NamedSharding(mesh, PartitionSpec("data")))
