"""jaxdp.runtime.host_memory: with JAXDP_KEEP_HOST_MEMORY=1, glibc keeps the memory XLA frees after a
program runs, so the next run faults no pages in; nothing changes by default, where the user tuned
malloc, or off glibc; a bad value is refused."""

import json
import os
import subprocess
import sys

import pytest

from jaxdp.runtime import host_memory

pytestmark = pytest.mark.integration  # runs programs in subprocesses

# 64 MB of temporaries per run (the [2048, 8192] product), more than glibc's largest mmap
# threshold (32 MB), so with glibc's defaults each run maps them afresh. The median run is
# compared: kept, the heap still grows now and then while it settles (a freed block that does not
# fit the next request; more often when the machine is busy), and such a run faults its pages in
PROGRAM = """
import json, resource, sys
from jaxdp.runtime import host_memory
from jaxdp.runtime.devices import use_cpu_cores
use_cpu_cores()
import jax, jax.numpy as jnp
x, w1, w2 = jnp.ones((2048, 64)), jnp.ones((64, 8192)) / 64, jnp.ones((8192, 8))
f = jax.jit(lambda x, w1, w2: jnp.tanh(x @ w1) @ w2)
faults = []
for _ in range(24):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    f(x, w1, w2).block_until_ready()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps([sorted(faults)[len(faults) // 2], host_memory.is_kept()]))
"""
TEMP_PAGES = 2048 * 8192 * 4 // 4096


def clean_env(**variables) -> dict:
    """This environment less any malloc setting of the user's, plus `variables`."""
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES" and k not in host_memory.GLIBC_MALLOC_VARIABLES}
    env.pop("JAXDP_KEEP_HOST_MEMORY", None)
    return {**env, **variables}


def median_run_faults(keep: str | None) -> tuple[float, bool]:
    """The median run's page faults in a fresh process with `keep` as JAXDP_KEEP_HOST_MEMORY
    (None: unset), and whether that process kept its memory (`host_memory.is_kept`)."""
    env = clean_env(JAX_NUM_CPU_DEVICES="1", **({} if keep is None else {"JAXDP_KEEP_HOST_MEMORY": keep}))
    out = subprocess.run([sys.executable, "-c", PROGRAM], env=env, check=True, capture_output=True, text=True)
    faults, kept = json.loads(out.stdout.strip().splitlines()[-1])
    return faults, kept


@pytest.mark.skipif(not host_memory.is_glibc(), reason="glibc's malloc only")
def test_a_program_run_again_faults_no_pages_in_when_asked():
    (default, default_kept), (kept, kept_kept) = median_run_faults(None), median_run_faults("1")
    assert default > 0.5 * TEMP_PAGES, default  # the premise, and the default: each run maps them afresh
    assert not default_kept
    assert kept < 0.05 * TEMP_PAGES, kept
    assert kept_kept


def refuse_ctypes(monkeypatch):
    def no_call(*args, **kwargs):
        raise AssertionError("mallopt must not be called")

    monkeypatch.setattr(host_memory.ctypes, "CDLL", no_call)


@pytest.mark.parametrize(
    "name, value",
    [("GLIBC_TUNABLES", "glibc.malloc.arena_max=2"), ("MALLOC_ARENA_MAX", "4"), ("MALLOC_TRIM_THRESHOLD_", "0")],
)
def test_the_users_malloc_settings_win(monkeypatch, name, value):
    monkeypatch.setattr(host_memory, "is_glibc", lambda: True)
    refuse_ctypes(monkeypatch)
    monkeypatch.setenv("JAXDP_KEEP_HOST_MEMORY", "1")
    monkeypatch.setenv(name, value)
    assert host_memory.reuse_freed_memory() is False


@pytest.mark.parametrize("value", [None, "0"])
def test_off_unless_asked_for(monkeypatch, value):
    monkeypatch.setattr(host_memory, "is_glibc", lambda: True)
    refuse_ctypes(monkeypatch)
    if value is None:
        monkeypatch.delenv("JAXDP_KEEP_HOST_MEMORY", raising=False)
    else:
        monkeypatch.setenv("JAXDP_KEEP_HOST_MEMORY", value)
    assert host_memory.reuse_freed_memory() is False


def test_a_bad_value_is_refused(monkeypatch):
    refuse_ctypes(monkeypatch)
    monkeypatch.setenv("JAXDP_KEEP_HOST_MEMORY", "yes")
    with pytest.raises(ValueError, match="JAXDP_KEEP_HOST_MEMORY must be 0 .* or 1 .*'yes'"):
        host_memory.reuse_freed_memory()


def test_a_command_refuses_a_bad_value_in_one_line():
    env = clean_env(JAXDP_KEEP_HOST_MEMORY="true")
    out = subprocess.run([sys.executable, "-m", "jaxdp", "--version"], env=env, capture_output=True, text=True)
    assert out.returncode == 2 and out.stdout == "", out
    assert out.stderr.strip().splitlines() == [
        "python -m jaxdp: error: JAXDP_KEEP_HOST_MEMORY must be 0 (glibc's defaults) or 1 "
        "(keep freed host memory), got 'true'"
    ]


def test_other_c_libraries_are_left_alone(monkeypatch):
    monkeypatch.setattr(host_memory.platform, "libc_ver", lambda: ("", ""))
    refuse_ctypes(monkeypatch)
    assert host_memory.is_glibc() is False
    assert host_memory.reuse_freed_memory() is False
