"""The dataset and the uninterrupted reference run that the fault tests compare against."""

from __future__ import annotations

from pathlib import Path

import pytest

from jaxdp.cli import main as cli
from jaxdp.tasks.dataset import build, save
from tests.faults.common import TASK, TRAIN


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
    """The uninterrupted run, in this process."""
    out = tmp_path_factory.mktemp("reference") / "run"
    assert cli([*TRAIN, "--data", str(data), "--out", str(out)]) == 0
    return out
