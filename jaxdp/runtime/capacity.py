"""What this machine can hold: the memory there is (`device_memory`, `host_memory`: the first
device's limit on an accelerator, and on a CPU the smallest of the physical memory, the
address-space limit (``ulimit -v``) and the cgroup's ``memory.max``), a one-line refusal when a
need exceeds it (`refuse_above`, `check_dataset_memory`), and whether an error was an allocation
failure (`out_of_memory`)."""

from __future__ import annotations

import functools
import os
import resource
from pathlib import Path

from jaxdp.runtime.errors import JaxdpError


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


def refuse_above(need: int, what: str, lower: str, error: type[Exception] = JaxdpError, host: bool = False) -> None:
    have, where = host_memory() if host else device_memory()
    if need > have:
        raise error(f"{what} needs at least {describe(need)}; this {where} has {describe(have)}: lower {lower}")


def check_dataset_memory(task, examples: int, error: type[Exception] = JaxdpError) -> None:
    """A dataset is held whole (uint16 tokens), twice while it is built."""
    refuse_above(
        2 * int(examples) * task.max_len * 2,
        f"a dataset of {examples} examples of {task}",
        "the number of examples (train_examples, test_examples; --train, --test)",
        error,
        host=True,
    )


def out_of_memory(error: BaseException) -> bool:
    """Whether `error` is a device or host allocation failure."""
    return isinstance(error, MemoryError) or "RESOURCE_EXHAUSTED" in str(error)[:400]
