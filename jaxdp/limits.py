"""What this machine can run, checked before anything is written or compiled.

A run is refused in one line when it cannot fit: when its step count overflows the optimizer's
int32 step counter (`check_steps`), when training its model needs more memory than the machine
has (`check_training_memory`), or when its dataset does (`check_dataset_memory`). The memory
needed is a lower estimate (what must be held at once, whatever XLA does), so a refusal is never
wrong; a run that passes and still runs out of memory is stopped by `out_of_memory`'s one line.
The memory there is (`device_memory`, `host_memory`) is the first device's limit on an
accelerator, and on a CPU the smallest of the physical memory, the address-space limit
(``ulimit -v``) and the cgroup's ``memory.max``.
"""

from __future__ import annotations

import functools
import os
import resource
from pathlib import Path

import numpy as np

from jaxdp.errors import JaxdpError

#: optax counts steps in int32
MAX_STEPS = 2**31 - 1


def describe(num_bytes: float) -> str:
    """1536 -> '1.5 KiB'; the units go up to EiB, then powers of ten."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if num_bytes < 1024 or unit == "EiB":
            return f"{num_bytes:.3g} {unit}" if num_bytes < 1e6 else f"{num_bytes:.2e} {unit}"
        num_bytes /= 1024
    raise AssertionError("unreachable")


@functools.lru_cache(maxsize=1)
def device_memory() -> tuple[int, str]:
    """(bytes a model may use, what holds them: "gpu", "tpu" or, on a CPU, "machine")."""
    import jax

    device = jax.devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"]), device.platform
    return host_memory()


@functools.lru_cache(maxsize=1)
def host_memory() -> tuple[int, str]:
    """(bytes of host memory this process may use, "machine")."""
    limits = [os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")]
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        limits.append(soft)
    try:
        text = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if text.isdigit():
            limits.append(int(text))
    except OSError:
        pass
    return min(limits), "machine"


def _refuse_above(need: int, what: str, lower: str, error: type[Exception] = JaxdpError, host: bool = False) -> None:
    have, where = host_memory() if host else device_memory()
    if need > have:
        raise error(f"{what} needs at least {describe(need)}; this {where} has {describe(have)}: lower {lower}")


def training_bytes(model_config, batch_size: int, seq_len: int) -> int:
    """At least what training holds at once: parameters, gradients and AdamW's two moments
    (4 copies of every parameter), and the activations the backward pass keeps, at least the
    inputs of every layer's products (4·D + 2·F numbers a token), what its mixer keeps
    (`Mixer.kept_per_token`) and the logits (2·V)."""
    from jaxdp.flops import param_count

    c = model_config
    mixer = sum(layer.mixer.kept_per_token(layer, seq_len) for layer in c.layers())  # e.g. per-chunk matrices
    per_token = (c.num_layers * (4 * c.dim + 2 * c.hidden_dim) + mixer) * _itemsize(c.dtype) + 2 * c.vocab_size * 4
    return 4 * param_count(c) * _itemsize(c.param_dtype) + batch_size * seq_len * per_token


def _itemsize(dtype: str) -> int:
    """Bytes of one number of a `ModelConfig` dtype (numpy has no bfloat16 of its own)."""
    return 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize


def check_training_memory(model_config, batch_size: int, seq_len: int, replicas: int = 1) -> None:
    """Refuse to train `model_config` on batches of `batch_size` sequences of `seq_len` tokens
    where `training_bytes` exceed the device's memory; `replicas` packed ones (`jaxdp.pack`)
    each hold all of it."""
    c = model_config
    packed = f" in {replicas} packed replicas" if replicas > 1 else ""
    _refuse_above(replicas * training_bytes(c, batch_size, seq_len),
                  f"training D={c.dim} ({c.num_layers} layers, length {seq_len}) at batch {batch_size}{packed}",
                  "the dim, batch_size or num_layers" + (" or --pack" if packed else ""))  # fmt: skip


#: `training_bytes` is a lower bound, about half of what XLA holds (tests/test_limits.py): a pack
#: is sized to hold this many times it
PACK_MARGIN = 3


def replicas_that_fit(model_config, batch_size: int, seq_len: int, most: int) -> int:
    """How many packed replicas (at most `most`, at least 1) fit the device with `PACK_MARGIN`."""
    have, _ = device_memory()
    per = PACK_MARGIN * training_bytes(model_config, batch_size, seq_len)
    return max(1, min(most, have // max(per, 1)))


def check_dataset_memory(task, examples: int, error: type[Exception] = JaxdpError) -> None:
    """A dataset is held whole (uint16 tokens), twice while it is built."""
    _refuse_above(2 * int(examples) * task.max_len * 2, f"a dataset of {examples} examples of {task}",
                  "the number of examples (train_examples, test_examples; --train, --test)", error, host=True)  # fmt: skip


def check_steps(train_config, train_examples: int) -> None:
    steps = train_config.epochs * (int(train_examples) // train_config.batch_size)
    if steps > MAX_STEPS:
        raise JaxdpError(f"TrainConfig.epochs: {train_config.epochs} epochs of {train_examples} examples at batch "
                         f"{train_config.batch_size} are {steps:.3g} steps; at most {MAX_STEPS} (the optimizer "
                         "counts steps in int32): lower epochs or the training examples")  # fmt: skip


def out_of_memory(error: BaseException) -> bool:
    """Whether `error` is a device or host allocation failure."""
    return isinstance(error, MemoryError) or "RESOURCE_EXHAUSTED" in str(error)[:400]
