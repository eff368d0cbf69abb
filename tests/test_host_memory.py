"""jaxdp.host_memory: glibc keeps the memory XLA frees after a program runs, so the next run
faults no pages in; nothing changes where the user tuned malloc, or off glibc."""

import json
import os
import subprocess
import sys

import pytest

from jaxdp import host_memory

# 64 MB of temporaries per run (the [2048, 8192] product), more than glibc's largest mmap
# threshold (32 MB), so with glibc's defaults each run maps them afresh
PROGRAM = """
import json, resource, sys
from jaxdp.devices import use_cpu_cores
use_cpu_cores()
import jax, jax.numpy as jnp
x, w1, w2 = jnp.ones((2048, 64)), jnp.ones((64, 8192)) / 64, jnp.ones((8192, 8))
f = jax.jit(lambda x, w1, w2: jnp.tanh(x @ w1) @ w2)
for _ in range(4):
    f(x, w1, w2).block_until_ready()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(6):
    f(x, w1, w2).block_until_ready()
print(json.dumps((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 6))
"""
TEMP_PAGES = 2048 * 8192 * 4 // 4096


def faults_per_run(keep: str) -> float:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES" and k not in host_memory.GLIBC_MALLOC_VARIABLES}
    env.update(JAXDP_KEEP_HOST_MEMORY=keep, JAX_NUM_CPU_DEVICES="1")
    out = subprocess.run([sys.executable, "-c", PROGRAM], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not host_memory.is_glibc(), reason="glibc's malloc only")
def test_a_program_run_again_faults_no_pages_in():
    default, kept = faults_per_run("0"), faults_per_run("1")
    assert default > 0.5 * TEMP_PAGES, default  # the premise: glibc's default maps them afresh
    assert kept < 0.05 * TEMP_PAGES, kept


def refuse_ctypes(monkeypatch):
    def no_call(*args, **kwargs):
        raise AssertionError("mallopt must not be called")

    monkeypatch.setattr(host_memory.ctypes, "CDLL", no_call)


@pytest.mark.parametrize("name, value", [("JAXDP_KEEP_HOST_MEMORY", "0"), ("GLIBC_TUNABLES", "glibc.malloc.arena_max=2"),
                                         ("MALLOC_ARENA_MAX", "4"), ("MALLOC_TRIM_THRESHOLD_", "0")])  # fmt: skip
def test_the_users_malloc_settings_win(monkeypatch, name, value):
    monkeypatch.setattr(host_memory, "is_glibc", lambda: True)
    refuse_ctypes(monkeypatch)
    monkeypatch.setenv(name, value)
    assert host_memory.reuse_freed_memory() is False


def test_other_c_libraries_are_left_alone(monkeypatch):
    monkeypatch.setattr(host_memory.platform, "libc_ver", lambda: ("", ""))
    refuse_ctypes(monkeypatch)
    assert host_memory.is_glibc() is False
    assert host_memory.reuse_freed_memory() is False
