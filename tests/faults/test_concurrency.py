"""One process per run: a run, a shard, started twice; a broken cell in a sweep."""

from __future__ import annotations

import signal
import time

import pytest

from tests.faults.common import (
    TRAIN,
    array_file,
    assert_same_as_reference,
    finish,
    flip,
    jaxdp,
    one_line,
    steps,
    sweep,
    train_run,
)

pytestmark = pytest.mark.integration  # trains, runs commands or compiles whole models


def test_the_same_run_started_twice_trains_once(data, reference, tmp_path):
    """A requeued SLURM task beside the one still running: the second gets one line and exit 2."""
    run = tmp_path / "run"
    first = jaxdp(*TRAIN, "--data", str(data), "--out", str(run), fault="train.compile@1:SIGSTOP")
    deadline = time.monotonic() + 120
    while not (run / "lock").exists() or not (run / "lock").read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)  # the first process is stopped inside its run, holding the lock
    rc, _, err = train_run(data, run)
    assert rc == 2 and "in use by another process" in one_line(err)
    first.send_signal(signal.SIGCONT)
    assert finish(first)[0] == 0
    assert_same_as_reference(run, reference)


@pytest.mark.slow
def test_a_shard_started_twice_trains_each_cell_once(tmp_path):
    """The second process skips the cell the first holds and trains the other; results.csv ends
    as a single process would write it."""
    rc, _, err = finish(sweep(tmp_path / "alone"))
    assert rc == 0, err
    first = sweep(tmp_path / "twice", "--shard", "0/1", fault="train.compile@1:SIGSTOP")
    deadline = time.monotonic() + 120
    while not list((tmp_path / "twice").glob("fig1/tiny/lis/standard/*/*/*/*/lock")):
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    rc, out, err = finish(sweep(tmp_path / "twice", "--shard", "0/1"))
    assert rc == 0 and "1 cells trained, 0 rescored, 0 already done, 1 in progress elsewhere" in out, (out, err)
    first.send_signal(signal.SIGCONT)
    rc, out, err = finish(first)
    assert rc == 0 and "1 cells trained, 0 rescored, 1 already done" in out, (out, err)
    assert (tmp_path / "twice" / "fig1/tiny/results.csv").read_text() == (
        tmp_path / "alone" / "fig1/tiny/results.csv"
    ).read_text()


@pytest.mark.slow
def test_a_broken_cell_is_reported_and_the_sweep_goes_on(tmp_path):
    rc, _, _ = finish(sweep(tmp_path, "--checkpoint-every", "1", fault="train.step@3"))
    assert rc == -signal.SIGKILL  # the first cell has checkpoints at steps 1 and 2
    (cell,) = (tmp_path / "fig1/tiny/lis/standard/size=4/d=8/seed=0").iterdir()
    for step in steps(cell):
        flip(array_file(cell / "checkpoints" / str(step), flip))
    rc, out, err = finish(sweep(tmp_path))
    assert rc == 1 and "no good checkpoint left" in err and "lis/standard/size=4/d=8/seed=0" in err, (out, err)
    assert "1 cells trained, 0 rescored, 0 already done, 1 failed (lis/standard/size=4/d=8/seed=0)" in out
    assert "Traceback" not in err
    rc, out, err = finish(sweep(tmp_path))  # the bad checkpoints were moved aside: it trains afresh
    assert rc == 0 and "1 cells trained, 0 rescored, 1 already done" in out, (out, err)
