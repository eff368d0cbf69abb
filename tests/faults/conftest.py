"""The dataset and the uninterrupted reference run that the fault tests compare against."""

from __future__ import annotations

from pathlib import Path

import pytest

from jaxdp.tasks.builder import build
from jaxdp.tasks.dataset import save
from tests.faults.common import TASK, train_run


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data") / "lis4"
    folder.mkdir()
    train_set, test_set = build(TASK, 512, 32, seed=1, progress=False)
    save(train_set, folder / "train.npz")
    save(test_set, folder / "test.npz")
    return folder


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory) -> Path:
    """The uninterrupted run, in a subprocess like the runs it is compared with: `python -m jaxdp`
    takes one jax device per core (`jaxdp.runtime.devices`), and a batch summed over two devices is not
    bit-identical to one summed on one."""
    out = tmp_path_factory.mktemp("reference") / "run"
    rc, _, err = train_run(data, out)
    assert rc == 0, err
    return out
