"""Markers: `slow` tests are deselected by default (run with -m slow); `gpu` tests are skipped
when jax sees no GPU. The default run spreads test files over two workers (pytest-xdist, see
pyproject's addopts; `-n 0` runs in one process)."""

import os

import pytest

# The default run has two pytest workers (-n 2): on a GPU, neither may grab most of its memory.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def pytest_collection_modifyitems(config, items):
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
