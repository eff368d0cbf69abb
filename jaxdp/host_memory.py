"""Keep the host memory that XLA frees at the end of a step, for the next step (glibc, Linux).

XLA's CPU runtime allocates a program's temporaries as one block per device and execution (138 MB
for each device's half of the benchmark's D 128, L 84, batch 64 training step) and frees it when
the step ends. glibc serves a block that large with a fresh ``mmap`` and returns it with
``munmap``, so every step faults every page of it in again, each one zeroed by the kernel: on
the 2-core VM 67,000 page faults and about 130 ms of kernel time per 190 ms step
(`benchmarks/step_ablations.py --memory`, benchmarks/RESULTS.md).

`reuse_freed_memory` sets four of glibc's malloc parameters (``mallopt``) so that every block
comes from the one main heap and stays there once freed: ``M_ARENA_MAX=1`` (no per-thread heaps,
which are mmapped and at most 64 MB), ``M_MMAP_MAX=0`` (no block of its own mmap),
``M_TRIM_THRESHOLD`` at its maximum (freed memory is not given back to the system) and
``M_TOP_PAD`` (the heap grows 64 MB at a time). The next step's block then reuses pages already
faulted in. Nothing computed changes. The cost is that the process keeps its peak host memory
until it exits, which a training or decoding process reaches in its first steps anyway.

It takes effect for threads that have not allocated yet, so the commands call it before jax
starts (`jaxdp.devices.use_cpu_cores` does). It changes nothing where the C library is not
glibc, or where the user already tuned malloc (``GLIBC_TUNABLES`` with a ``glibc.malloc``
entry, or one of glibc's ``MALLOC_*`` variables); ``JAXDP_KEEP_HOST_MEMORY=0`` turns it off.
Called after jax has started, it changes only the threads that start later.
"""

from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX, M_ARENA_MAX = -1, -2, -4, -8  # glibc's malloc.h
TOP_PAD_BYTES = 64 * 2**20
SETTINGS = {M_ARENA_MAX: 1, M_MMAP_MAX: 0, M_TRIM_THRESHOLD: 2**31 - 1, M_TOP_PAD: TOP_PAD_BYTES}
#: the environment variables glibc's malloc reads at start-up (besides GLIBC_TUNABLES)
GLIBC_MALLOC_VARIABLES = ("MALLOC_ARENA_MAX", "MALLOC_ARENA_TEST", "MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_",
                          "MALLOC_TOP_PAD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_CHECK_", "MALLOC_PERTURB_")  # fmt: skip


def malloc_set_by_user() -> bool:
    """True when the environment already tunes glibc's malloc, or turns this module off."""
    return (os.environ.get("JAXDP_KEEP_HOST_MEMORY", "1") == "0"
            or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", "")
            or any(name in os.environ for name in GLIBC_MALLOC_VARIABLES))  # fmt: skip


def is_glibc() -> bool:
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def reuse_freed_memory() -> bool:
    """Set glibc's malloc to keep and reuse freed memory (module docstring). Returns True when it
    was set, False when nothing was changed (not glibc, the user's own malloc settings, or
    ``JAXDP_KEEP_HOST_MEMORY=0``)."""
    if not is_glibc() or malloc_set_by_user():
        return False
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in SETTINGS.items())
