"""Ctrl-C, SIGTERM and SIGKILL at chosen moments of training and of a save."""

from __future__ import annotations

import shutil
import signal
import time

import pytest

from tests.faults.common import TRAIN, assert_same_as_reference, finish, jaxdp, metrics, one_line, steps, train_run

pytestmark = pytest.mark.integration  # trains, runs commands or compiles whole models


@pytest.mark.parametrize(
    "signal_name,step,code",
    [
        ("SIGTERM", 62, 143),  # inside the last logging window: the final loss must not change
        pytest.param("SIGTERM", 23, 143, marks=pytest.mark.slow),
        pytest.param("SIGINT", 23, 130, marks=pytest.mark.slow),
    ],
)
def test_a_signal_mid_training_checkpoints_the_last_step_and_the_rerun_matches(
    signal_name, step, code, data, reference, tmp_path
):
    rc, _, err = train_run(data, tmp_path / "run", fault=f"train.step@{step}:{signal_name}")
    assert rc == code and one_line(err).startswith(f"interrupted ({signal_name})")
    assert steps(tmp_path / "run")[-1] == step, "the last completed step is checkpointed"
    assert metrics(tmp_path / "run")[-1][0] == step // 4 * 4, "what is logged matches what is checkpointed"
    rc, _, err = train_run(data, tmp_path / "run")
    assert rc == 0, err
    assert_same_as_reference(tmp_path / "run", reference)


def test_ctrl_c_during_the_first_compile_ends_cleanly(data, reference, tmp_path):
    """Sent from outside while the first step compiles: no segfault, one line, exit 130. On a
    loaded machine the whole run can end before the signal is sent; that attempt proves nothing
    and is made again (at most three times: a SIGINT that is ignored still fails)."""
    for _ in range(3):
        shutil.rmtree(tmp_path / "run", ignore_errors=True)
        proc = jaxdp(*TRAIN, "--data", str(data), "--out", str(tmp_path / "run"), compile_cache=False)
        deadline = time.monotonic() + 120
        while not (tmp_path / "run" / "protocol.json").exists():  # written just before the compile
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.05)  # into the compile, which takes longer than this even for this tiny model
        proc.send_signal(signal.SIGINT)
        rc, _, err = finish(proc)
        if rc != 0:  # 0: the run ended before the signal came
            break
    assert rc == 130 and one_line(err).startswith("interrupted (SIGINT)"), (rc, err)
    assert train_run(data, tmp_path / "run")[0] == 0
    assert_same_as_reference(tmp_path / "run", reference)


@pytest.mark.parametrize(
    "fault",
    [
        "checkpoint.writing@2",
        pytest.param("train.step@37", marks=pytest.mark.slow),
        pytest.param("checkpoint.written@1", marks=pytest.mark.slow),
        pytest.param("train.compile@1", marks=pytest.mark.slow),
    ],
)
def test_sigkill_anywhere_resumes_bit_identically(fault, data, reference, tmp_path):
    rc, _, _ = train_run(data, tmp_path / "run", fault=fault)
    assert rc == -signal.SIGKILL
    rc, _, err = train_run(data, tmp_path / "run")
    assert rc == 0, err
    assert_same_as_reference(tmp_path / "run", reference)
