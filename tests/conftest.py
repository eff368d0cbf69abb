"""Markers: `slow` tests are deselected by default (run with -m slow); `gpu` tests are skipped
when jax sees no GPU. The default run spreads test files over two workers (pytest-xdist, see
pyproject's addopts; `-n 0` runs in one process)."""

import os
import shutil
import signal
import tempfile

import pytest

# A test run started in the background (`&` in a script, nohup) inherits SIGINT ignored, and so
# would every command a test starts: the Ctrl-C tests would then see the signal ignored. Restore
# Python's handler here (in the controller and in each worker), so that the commands start with it.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# The default run has two pytest workers (-n 2): on a GPU, neither may grab most of its memory.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# One persistent compilation cache for the whole session, set here in the controller before jax
# is imported, so that the workers and every subprocess a test starts (reruns after a fault, shards,
# notebooks) load the programs an earlier one compiled (`jaxdp.sweeps.runner.use_compile_cache`).
_OWN_CACHE = "JAX_COMPILATION_CACHE_DIR" not in os.environ and "PYTEST_XDIST_WORKER" not in os.environ
if _OWN_CACHE:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="jaxdp-tests-xla-")


def pytest_unconfigure(config):
    if _OWN_CACHE:
        shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)


#: the longest files, handed to the two workers first (xdist's loadfile follows the collection
#: order): last in the alphabet, they used to leave one worker running alone for minutes
LONG_FIRST = (
    "tests/training/test_train.py",
    "tests/test_notebooks.py",
    "tests/training/test_fast_paths.py",
    "tests/sweeps/test_study.py",
    "tests/training/test_pack.py",
    "tests/models/test_transformer.py",
    "tests/models/test_mixers.py",
)


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in LONG_FIRST)  # stable: the rest keep their order
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return
    import jax

    if not any(d.platform == "gpu" for d in jax.devices()):
        skip = pytest.mark.skip(reason="needs a GPU")
        for item in gpu_items:
            item.add_marker(skip)


@pytest.fixture
def x64():
    """Run the test with jax_enable_x64 on (float64 arrays), restoring the setting afterwards."""
    import jax

    with jax.enable_x64(True):
        yield
