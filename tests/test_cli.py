"""The command line, end to end: one-line summaries and one-line errors (exit 2)."""

import re
import subprocess
import sys

import pytest

from jaxdp import cli
from jaxdp.tasks import dataset

pytestmark = pytest.mark.integration  # trains, runs commands or compiles whole models


def test_data_command_as_a_user_runs_it(tmp_path):
    out = tmp_path / "lis-8"
    cmd = [
        sys.executable,
        "-m",
        "jaxdp",
        "data",
        "--task",
        "lis",
        "--size",
        "8",
        "--train",
        "500",
        "--test",
        "50",
        "--out",
        str(out),
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1].startswith("lis(8, value_range=149): 500 train + 50 test examples")
    assert len(dataset.load(out / "train.npz")) == 500
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert "already built, loaded and checked" in again.stdout


@pytest.mark.parametrize(
    "argv,message",
    [
        (
            ["data", "--task", "lis", "--size", "0", "--train", "5", "--test", "5", "--out", "x"],
            r"error: lis: size must be in \[3, 4096\], got 0",
        ),
        (["show", "--task", "ed", "--size", "4", "--option", "border=free"], "error: ed: border must be one of"),
        (
            ["show", "--task", "ed", "--size", "4", "--option", "flavour=3"],
            "error: ed: unknown option 'flavour'; options: insert_cost, delete_cost, replace_cost, border",
        ),
    ],
)
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


def test_show_prints_the_task_header_before_its_examples(capsys):
    assert cli.main(["show", "--task", "lis", "--size", "4", "--count", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("lis(4, value_range=149): vocabulary 156 tokens, max_len 12")
    assert [i for i, line in enumerate(lines) if "prompt:" in line] == [1, 4]


def test_version_is_the_package_version(capsys):
    from jaxdp import __version__

    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"jaxdp {__version__}"


def test_a_run_folders_config_trains_the_same_run_again(tmp_path):
    """`train --config <run>/config.json --out other` gives the same protocol digest, the same
    loss curve and the same scores as the run it was read from; a flag given beside it wins."""
    import json

    data = tmp_path / "data"
    assert (
        cli.main(
            [
                "data",
                "--task",
                "lis",
                "--size",
                "4",
                "--option",
                "value_range=16",
                "--train",
                "256",
                "--test",
                "32",
                "--out",
                str(data),
            ]
        )
        == 0
    )
    first = tmp_path / "first"
    assert (
        cli.main(
            [
                "train",
                "--task",
                "lis",
                "--size",
                "4",
                "--option",
                "value_range=16",
                "--mixer",
                "sparse",
                "--dim",
                "16",
                "--seed",
                "3",
                "--epochs",
                "2",
                "--batch-size",
                "32",
                "--lr",
                "2e-3",
                "--warmup-epochs",
                "1",
                "--set",
                "local_blocks=2",
                "--data",
                str(data),
                "--out",
                str(first),
                "--quiet",
            ]
        )
        == 0
    )
    again = tmp_path / "again"
    assert cli.main(["train", "--config", str(first / "config.json"), "--out", str(again), "--quiet"]) == 0
    read = lambda run, name: json.loads((run / name).read_text())  # noqa: E731
    assert read(again, "config.json")["digest"] == read(first, "config.json")["digest"]
    for key in ("accuracy", "final_loss", "steps", "teacher_forced_exact"):
        assert read(again, "result.json")[key] == read(first, "result.json")[key], key
    losses = lambda run: [json.loads(line)["loss"] for line in open(run / "metrics.jsonl") if '"loss"' in line]  # noqa: E731
    assert losses(again) == losses(first)
    other = tmp_path / "other"
    assert (
        cli.main(["train", "--config", str(first / "config.json"), "--epochs", "1", "--out", str(other), "--quiet"])
        == 0
    )
    assert read(other, "config.json")["train"]["epochs"] == 1
    assert read(other, "config.json")["model"]["options"]["local_blocks"] == 2
