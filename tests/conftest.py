"""Markers: `slow` tests are deselected by default (run with -m slow); `gpu` tests are skipped
when jax sees no GPU. The default run spreads test files over two workers (pytest-xdist, see
pyproject's addopts; `-n 0` runs in one process)."""

import collections
import json
import os
import shutil
import signal
import tempfile
from pathlib import Path

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


#: each test file's measured seconds in the default run, longest first: xdist's loadfile hands files
#: to the workers in collection order, so the long ones go first and no worker is left running alone
#: at the end. Rewritten by ``python -m pytest --record-file-seconds``; files it lacks go last.
FILE_SECONDS = Path(__file__).with_name("file_seconds.json")
_measured: collections.Counter = collections.Counter()


def pytest_addoption(parser):
    parser.addoption(
        "--record-file-seconds",
        action="store_true",
        help=f"write each test file's measured seconds to {FILE_SECONDS.name} (the order files start in)",
    )


def pytest_runtest_logreport(report):  # in the controller, for every worker's reports too
    _measured[report.nodeid.split("::")[0]] += report.duration


def pytest_sessionfinish(session):
    if session.config.getoption("record_file_seconds") and "PYTEST_XDIST_WORKER" not in os.environ:
        seconds = {name: round(s, 1) for name, s in _measured.most_common()}
        FILE_SECONDS.write_text(json.dumps(seconds, indent=1) + "\n")


def pytest_collection_modifyitems(config, items):
    seconds = json.loads(FILE_SECONDS.read_text()) if FILE_SECONDS.exists() else {}
    items.sort(key=lambda item: -seconds.get(item.nodeid.split("::")[0], 0.0))  # stable within a file
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
