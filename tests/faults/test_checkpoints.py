"""Damaged checkpoints, foreign checkpoints, divergence, and the run's other files."""

from __future__ import annotations

import shutil
import signal

import jax
import numpy as np
import pytest
from flax import nnx

from jaxdp.training.run import restore_model
from tests.faults.common import (
    TRAIN,
    array_file,
    assert_same_as_reference,
    finish,
    flip,
    jaxdp,
    one_line,
    overwrite,
    result,
    steps,
    train_run,
    truncate,
)

pytestmark = pytest.mark.integration  # trains, runs commands or compiles whole models


@pytest.mark.parametrize(
    "damage",
    [pytest.param(overwrite, marks=pytest.mark.slow), flip, pytest.param(truncate, marks=pytest.mark.slow)],
    ids=["overwritten", "bit-flipped", "truncated"],
)
def test_a_damaged_latest_checkpoint_falls_back_to_the_one_before(damage, data, reference, tmp_path):
    run = tmp_path / "run"
    assert train_run(data, run, fault="train.step@25")[0] == -signal.SIGKILL  # checkpoints at 10 and 20
    assert steps(run) == [10, 20]
    damage(array_file(run / "checkpoints" / "20", damage))
    rc, _, err = train_run(data, run)
    assert rc == 0, err
    warning = one_line(err)
    assert warning.startswith("warning:") and "step 20" in warning and "resuming from step 10" in warning
    assert list((run / "corrupt-checkpoints").iterdir())
    assert_same_as_reference(run, reference)


def test_no_good_checkpoint_left_is_one_clear_error(data, tmp_path):
    run = tmp_path / "run"
    assert train_run(data, run, fault="train.step@15")[0] == -signal.SIGKILL  # one checkpoint, at 10
    flip(array_file(run / "checkpoints" / "10", flip))
    rc, _, err = train_run(data, run)
    assert rc == 2 and "no good checkpoint left" in one_line(err) and "step 10" in err


def test_a_folder_without_config_never_resumes_another_runs_checkpoints(data, tmp_path):
    run = tmp_path / "run"
    assert train_run(data, run, fault="train.step@15")[0] == -signal.SIGKILL
    (run / "config.json").unlink()
    (run / "protocol.json").unlink()
    other = [*TRAIN, "--data", str(data), "--out", str(run), "--set", "weight_decay=0.05"]
    rc, _, err = finish(jaxdp(*other))
    assert rc == 2 and "holds checkpoints of another run" in one_line(err)


def test_non_finite_loss_names_a_checkpoint_that_exists_and_is_finite(data, tmp_path):
    run = tmp_path / "run"
    rc, _, err = finish(jaxdp(*TRAIN, "--data", str(data), "--out", str(run), "--lr", "1e9"))
    assert rc == 2
    message = one_line(err)
    assert "non-finite" in message or "became nan" in message.lower() or "became inf" in message.lower()
    if "the last good checkpoint is step" in message:
        step = int(message.split("the last good checkpoint is step ")[1].split()[0])
        assert step in steps(run)
        model, _ = restore_model(run)
        assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
    else:
        assert "no checkpoint was saved before that" in message


def test_a_torn_metrics_line_is_repaired(data, reference, tmp_path):
    run = tmp_path / "run"
    assert train_run(data, run, fault="metrics.torn@7")[0] == -signal.SIGKILL
    assert not (run / "metrics.jsonl").read_text().endswith("\n")
    rc, _, err = train_run(data, run)
    assert rc == 0 and not err.strip(), err
    assert_same_as_reference(run, reference)


def test_corrupt_result_config_and_metrics_are_named_and_repaired(data, reference, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    (run / "result.json").write_text("{not json")
    rc, _, err = train_run(data, run)
    assert rc == 0 and "result.json is unreadable" in one_line(err)
    assert result(run) == result(reference)
    (run / "config.json").write_text("\x00\x01")
    rc, _, err = train_run(data, run)
    assert rc == 0 and "config.json is unreadable" in one_line(err)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text("\n".join(lines[:3] + ["garbage"] + lines[3:]) + "\n")
    (run / "result.json").unlink()  # makes the run reopen its metrics
    rc, _, err = train_run(data, run)
    assert rc == 0 and "metrics.jsonl: dropped line(s) 4" in one_line(err)
    assert_same_as_reference(run, reference)
