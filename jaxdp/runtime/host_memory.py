"""Keep the host memory that XLA frees at the end of a step, for the next step (glibc, Linux):
opt-in, ``JAXDP_KEEP_HOST_MEMORY=1``, for CPU training at large shapes.

XLA's CPU runtime allocates a program's temporaries as one block per device and execution and
frees it when the step ends. glibc serves a block over its mmap threshold (at most 32 MB) with a
fresh ``mmap`` and returns it with ``munmap``, so every step faults every page of it in again,
each one zeroed by the kernel: at the benchmark's large shapes, kernel time then takes a large
share of the step (measured by `benchmarks/host_memory.py`, numbers in benchmarks/RESULTS.md,
"Host memory").

`reuse_freed_memory` sets four of glibc's malloc parameters (``mallopt``) so that every block
comes from the one main heap and stays there once freed: ``M_ARENA_MAX=1`` (no per-thread heaps:
glibc maps any block over 64 MB that a thread of its own heap asks for, whatever ``M_MMAP_MAX``
says), ``M_MMAP_MAX=0`` (no block of its own mmap), ``M_TRIM_THRESHOLD=-1`` (freed memory is
never given back to the system) and ``M_TOP_PAD`` (the heap grows 64 MB at a time). The next
step's block then reuses pages already faulted in. Nothing computed changes.

Why it is off by default: the one heap has one lock, which every thread then takes. Where a step's
temporaries stay under the mmap threshold (the small models most CPU runs train) there is nothing
to gain and the lock costs: XLA compiles more slowly, and small training runs take longer.
Kept, the process also holds more memory (its heap grows for the first tens of steps as a freed
block does not always fit the next request). Turn it on for long runs whose per-device step
temporaries pass 32 MB (the table in benchmarks/RESULTS.md, "Host memory").

It takes effect for threads that have not allocated yet, so the commands call it before jax
starts (`jaxdp.runtime.devices.use_cpu_cores` does). It changes nothing where the C library is not
glibc, or where the user already tuned malloc (``GLIBC_TUNABLES`` with a ``glibc.malloc``
entry, or one of glibc's ``MALLOC_*`` variables). Called after jax has started, it changes only
the threads that start later.
"""

from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX, M_ARENA_MAX = -1, -2, -4, -8  # glibc's malloc.h
TOP_PAD_BYTES = 64 * 2**20
VARIABLE = "JAXDP_KEEP_HOST_MEMORY"
SETTINGS = {M_ARENA_MAX: 1, M_MMAP_MAX: 0, M_TRIM_THRESHOLD: -1, M_TOP_PAD: TOP_PAD_BYTES}  # -1: never trim
#: the environment variables glibc's malloc reads at start-up (besides GLIBC_TUNABLES)
GLIBC_MALLOC_VARIABLES = (
    "MALLOC_ARENA_MAX",
    "MALLOC_ARENA_TEST",
    "MALLOC_MMAP_MAX_",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_CHECK_",
    "MALLOC_PERTURB_",
)
_kept = False  # set by reuse_freed_memory, read by is_kept


def keep_requested() -> bool:
    """True when ``JAXDP_KEEP_HOST_MEMORY`` is 1; False when it is 0 or unset. Any other value
    raises ValueError (one line, naming the variable and its values)."""
    value = os.environ.get(VARIABLE, "0")
    if value not in ("0", "1"):
        raise ValueError(f"{VARIABLE} must be 0 (glibc's defaults) or 1 (keep freed host memory), got {value!r}")
    return value == "1"


def malloc_set_by_user() -> bool:
    """True when the environment already tunes glibc's malloc."""
    return "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", "") or any(
        name in os.environ for name in GLIBC_MALLOC_VARIABLES
    )


def is_glibc() -> bool:
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def reuse_freed_memory() -> bool:
    """Set glibc's malloc to keep and reuse freed memory (module docstring) when
    ``JAXDP_KEEP_HOST_MEMORY=1``. Returns True when it was set, False when nothing was changed (not
    asked for, not glibc, or the user's own malloc settings); a bad value raises ValueError."""
    global _kept
    if not keep_requested() or not is_glibc() or malloc_set_by_user():
        return False
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    done = all(mallopt(param, value) == 1 for param, value in SETTINGS.items())
    _kept = _kept or done
    return done


def is_kept() -> bool:
    """True once `reuse_freed_memory` has set glibc's malloc in this process."""
    return _kept
