"""The command line, end to end: one-line summaries and one-line errors (exit 2)."""

import re
import subprocess
import sys

import pytest

from jaxdp import cli
from jaxdp.tasks import dataset


def test_data_command_as_a_user_runs_it(tmp_path):
    out = tmp_path / "lis-8"
    cmd = [sys.executable, "-m", "jaxdp", "data", "--task", "lis", "--size", "8", "--train", "500", "--test", "50", "--out", str(out)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1].startswith("lis(8, value_range=200): 500 train + 50 test examples")
    assert len(dataset.load(out / "train.npz")) == 500
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert "already built, loaded and checked" in again.stdout


@pytest.mark.parametrize("argv,message", [
    (["data", "--task", "lis", "--size", "0", "--train", "5", "--test", "5", "--out", "x"], r"error: lis: size must be in \[3, 4096\], got 0"),
    (["show", "--task", "ed", "--size", "4", "--option", "border=free"], "error: ed: border must be one of"),
    (["show", "--task", "ed", "--size", "4", "--option", "flavour=3"], "error: ed: unknown option 'flavour'; options: insert_cost, delete_cost, replace_cost, border"),
])  # fmt: skip
def test_bad_input_gets_one_line(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert re.match(message, err)


def test_unknown_task_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["show", "--task", "sorting", "--size", "3"])
    assert e.value.code == 2 and "invalid choice: 'sorting'" in capsys.readouterr().err


def test_corrupt_dataset_in_out_is_refused(tmp_path, capsys):
    args = ["data", "--task", "ed", "--size", "3", "--train", "100", "--test", "10", "--out", str(tmp_path)]
    assert cli.main(args) == 0
    (tmp_path / "train.npz").write_bytes(b"garbage")
    assert cli.main(args) == 2
    assert "corrupt, truncated or not a jaxdp-dataset file" in capsys.readouterr().err
    assert cli.main(args + ["--force"]) == 0


def test_show_and_options(capsys):
    assert cli.main(["show", "--task", "arithmetic", "--size", "3", "--option", "modulus=7", "--count", "1"]) == 0
    out = capsys.readouterr().out
    assert "prompt:" in out and "arithmetic(3, modulus=7, under=True, order='leftmost')" in out


