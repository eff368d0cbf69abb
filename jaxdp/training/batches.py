"""Batches for the training loop: which rows make the batch at a step (a function of the step
alone, so a resumed run sees the batches it would have seen), how many positions it needs, a
background thread that prepares the next ones, and the ``data`` mesh it is sharded over (data
parallel: all devices, or on one host the most that divide the batch, a CPU's cores among them,
`jaxdp.runtime.devices`; on many hosts call `jax.distributed.initialize()` first)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxdp.runtime.devices import batch_devices, batch_mesh


def batch_indices(
    num_examples: int, batch_size: int, seed: int, step: int, lengths: np.ndarray | None = None
) -> np.ndarray:
    """Rows of the batch at `step`: epoch e = step // steps_per_epoch walks a permutation drawn
    from (seed, e); the last partial batch of an epoch is dropped. A function of the step alone,
    so a resumed run sees exactly the batches it would have seen.

    With `lengths` (length bucketing), the epoch's rows (the same random rows, the partial
    batch dropped first) are sorted by length and cut into batches of neighbouring lengths, and
    the batches are taken in a random order: each example still comes once per epoch, and a
    batch of short examples can be cut short (`batch_length`)."""
    steps_per_epoch = num_examples // batch_size
    epoch, index = divmod(step, steps_per_epoch)
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(num_examples)
    if lengths is None:
        return order[index * batch_size : (index + 1) * batch_size]
    kept = order[: steps_per_epoch * batch_size]
    batches = kept[np.argsort(lengths[kept], kind="stable")].reshape(steps_per_epoch, batch_size)
    return batches[rng.permutation(steps_per_epoch)[index]]


def batch_length(lengths_B: np.ndarray, max_len: int) -> int:
    """Positions a batch needs: its longest example rounded up to a multiple of max_len/8 (itself
    a multiple of 8), so that at most 8 shapes compile, and at most the dataset's `max_len`.
    Positions past an example's length are padding: causal mixers never let them reach earlier
    positions, and the loss masks them, so the cut batch has the loss of the padded one
    (tests/training/test_fast_paths.py)."""
    bucket = 8 * -(-max_len // 64)
    return min(max_len, -(-int(lengths_B.max()) // bucket) * bucket)


def prefetch(make, steps: range, depth: int = 2) -> Iterator:
    """Yield make(step) for each step, computed `depth` steps ahead in a background thread."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def worker():
        try:
            for step in steps:
                if stop.is_set():
                    return
                q.put(make(step))
        except BaseException as e:  # hand errors to the consumer
            q.put(e)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    try:
        for _ in steps:
            item = q.get()
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a worker waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)


def data_mesh(batch_size: int, devices=None) -> Mesh:
    """The 1-D ``data`` mesh: over `devices`; by default over all devices of all processes, or,
    in one process, over the most of them that divide the batch (`jaxdp.runtime.devices.batch_devices`:
    a CPU split into one device per core by `jaxdp.runtime.devices.use_cpu_cores`)."""
    if devices is None:
        devices = jax.devices() if jax.process_count() > 1 else batch_devices(batch_size)
    return batch_mesh(devices)


def put_batch(arrays: tuple[np.ndarray, ...], mesh: Mesh) -> tuple[jax.Array, ...]:
    """Shard a global batch along the ``data`` axis. With several processes each process passes
    the whole global batch and contributes its own contiguous slice."""
    sharding = NamedSharding(mesh, PartitionSpec("data"))
    if jax.process_count() == 1:
        return tuple(jax.device_put(a, sharding) for a in arrays)
    n, p = jax.process_count(), jax.process_index()
    local = [a[p * len(a) // n : (p + 1) * len(a) // n] for a in arrays]
    return tuple(
        jax.make_array_from_process_local_data(sharding, part, whole.shape) for part, whole in zip(local, arrays)
    )
