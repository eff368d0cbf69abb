"""The edges a fault probe found: a sweep whose every cell fails, a report step that fails, two
dataset builds racing into one folder, a kill while a figure is written, and `eval` of a run
that has not finished."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from experiments import fig1
from jaxdp import cli
from jaxdp.models import ModelConfig
from jaxdp.sweeps import figures
from jaxdp.tasks.dataset import load
from jaxdp.training.protocol import TrainConfig
from jaxdp.training.run import train
from tests.faults.common import ROOT, TASK, finish, jaxdp

pytestmark = pytest.mark.integration  # trains, runs commands or compiles whole models

GRID = [
    "--preset",
    "tiny",
    "--tasks",
    "lis",
    "--sizes",
    "4",
    "--dims",
    "8",
    "--mixers",
    "standard",
    "--set",
    "epochs=2",
    "--set",
    "warmup_epochs=0",
    "--set",
    "train_examples=256",
    "--set",
    "test_examples=16",
    "--set",
    "eval_examples=16",
    "--set",
    "batch_size=64",
    "--quiet",
]


def test_a_sweep_whose_every_cell_fails_names_them_and_exits_1(tmp_path, capsys, monkeypatch):
    """lr 1e30 drives every cell to nan: each is named, then the summary (exit 1), and nothing
    is tabulated. A sane rerun trains the cell; a failure while drawing is the report's own."""
    where = ["--out", str(tmp_path / "runs"), "--data-root", str(tmp_path / "data")]
    assert fig1.main([*GRID, *where, "--set", "lr=1e30"]) == 1
    out, err = capsys.readouterr()
    assert "failed: loss became nan" in err and "Number of rows" not in err + out, err
    assert (
        out.strip()
        .splitlines()[-1]
        .startswith(
            "fig1: 0 cells trained, 0 rescored, 0 already done, 1 failed "
            "(lis/standard/size=4/d=8/seed=0); no results yet"
        )
    )
    assert not list(tmp_path.glob("runs/fig1/tiny/*.*")), "no results.csv, table or figure for no results"

    def broken(*args, **kwargs):
        raise ValueError("the colour map is missing")

    monkeypatch.setattr(figures, "heatmaps", broken)
    assert fig1.main([*GRID, *where]) == 1
    out, err = capsys.readouterr()
    assert err.strip() == "error: drawing fig1's figures failed (ValueError: the colour map is missing)", err
    assert "fig1: 1 cells trained" in out and (tmp_path / "runs/fig1/tiny/results.csv").exists()


def _reader(stream, lines: list) -> threading.Thread:
    thread = threading.Thread(target=lambda: lines.extend(stream), daemon=True)
    thread.start()
    return thread


def _stopped(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"


def test_two_builds_of_different_seeds_into_one_folder_leave_one_dataset_and_tell_the_truth(tmp_path):
    """The first build stops (SIGSTOP) inside its build; the second waits for it, then refuses
    the first one's dataset (exit 2). Both used to print "built" over one another's files."""
    out = tmp_path / "lis4"
    build = [
        "data",
        "--task",
        "lis",
        "--size",
        "4",
        "--option",
        "value_range=8",
        "--train",
        "300",
        "--test",
        "20",
        "--out",
        str(out),
    ]
    first = jaxdp(*build, "--seed", "0", fault="dataset.chunk@1:SIGSTOP")
    deadline = time.monotonic() + 120
    while not _stopped(first.pid):
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    second, err_lines = jaxdp(*build, "--seed", "1"), []
    reading = _reader(second.stderr, err_lines)
    while second.poll() is None and not any("waiting" in line for line in err_lines):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    first.send_signal(signal.SIGCONT)
    rc, out_first, _ = finish(first)
    assert rc == 0 and "built in" in out_first
    second.wait(timeout=120)
    reading.join(timeout=10)
    assert second.returncode == 2, (second.stdout.read(), err_lines)
    assert "already holds" in err_lines[-1] and "(300, 0)" in err_lines[-1], err_lines
    assert load(out / "train.npz").seed == load(out / "test.npz").seed == 0


def test_a_kill_while_a_figure_is_written_leaves_the_old_figure_whole(tmp_path):
    """SIGKILL between writing a figure and renaming it over the old one (the failpoint of
    `jaxdp.runtime.files`): the old PNG stays as it was, never a 0-byte or half file."""
    path = tmp_path / "fig1.png"
    path.write_bytes(b"an older figure")
    rows = [{"task": "lis", "size": 4, "L": 11, "mixer": "standard", "variant": "", "dim": 8, "accuracy": 0.5}]
    script = f"from jaxdp.sweeps import figures; figures.heatmaps({rows!r}, {str(path)!r})"
    env = {**os.environ, "JAXDP_FAULT": "files.replacing@1"}
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == -signal.SIGKILL, run.stderr
    assert path.read_bytes() == b"an older figure"
    env.pop("JAXDP_FAULT")
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", run.stderr


def test_eval_of_an_unfinished_run_says_so_and_names_the_step(data, tmp_path, capsys):
    train_set, test_set = load(data / "train.npz", TASK), load(data / "test.npz", TASK)
    model = ModelConfig(dim=8, num_layers=1, max_len=TASK.max_len, vocab_size=len(TASK.vocab), dropout=0.0)
    config = TrainConfig(epochs=2, batch_size=64, warmup_epochs=0, checkpoint_every=3)
    run = tmp_path / "run"
    assert train(run, TASK, model, config, train_set, test_set, progress=False, stop_after=5, data_dir=str(data)) == {
        "stopped_at": 5
    }
    assert cli.main(["eval", "--run", str(run), "--examples", "4"]) == 0
    assert "scored an UNFINISHED run: its checkpoint of step 5 of 16" in capsys.readouterr().out
    train(run, TASK, model, config, train_set, test_set, progress=False, data_dir=str(data))
    assert cli.main(["eval", "--run", str(run), "--examples", "4"]) == 0
    assert "scored the finished run (step 16)" in capsys.readouterr().out


def test_an_out_of_memory_error_becomes_one_line_naming_what_to_lower():
    """What XLA raises on a GPU (XLA:CPU aborts the process instead: `jaxdp.training.limits` refuses such
    runs beforehand)."""
    from jaxdp.runtime.errors import TrainingError
    from jaxdp.training.checks import stop_on_out_of_memory

    with pytest.raises(
        TrainingError,
        match=r"^out of memory while training \(RESOURCE_EXHAUSTED: Out of memory "
        r"allocating 1234 bytes\.\); lower batch_size or dim",
    ):
        with stop_on_out_of_memory("training", "batch_size or dim"):
            raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 1234 bytes.\nmore detail")
    with pytest.raises(KeyError):  # anything else passes through
        with stop_on_out_of_memory("training", "batch_size or dim"):
            raise KeyError("x")
