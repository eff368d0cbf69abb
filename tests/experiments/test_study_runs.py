"""The study's own commands: the calibration's fixed step budget, the study preset's
per-mixer learning rates and size-first order, `--collect`, and the GPU script at tiny sizes."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments import calibrate, common, fig1, presets
from jaxdp.sweeps import collect, grids

pytestmark = pytest.mark.integration  # trains, runs commands or compiles whole models

ROOT = Path(__file__).resolve().parents[2]


def test_the_study_protocol_holds_the_step_budget_whatever_the_data():
    for examples in (16_000, 64_000, 256_000):
        p = presets.study_protocol(examples)
        assert (p.train.epochs, p.train_examples) == (presets.STUDY_STEPS * 64 // examples, examples)
        assert p.train.epochs * examples // p.train.batch_size == presets.STUDY_STEPS
        assert p.train.warmup_epochs * examples // p.train.batch_size == presets.STUDY_STEPS // 32
        assert p.train.check_every and "value_range" not in p.task_options.get("lis", {})  # the paper's task
    with pytest.raises(ValueError, match="does not divide"):
        presets.study_protocol(100_000)


def test_calibrate_refuses_a_bad_probe_and_a_budget_that_does_not_divide(capsys):
    with pytest.raises(SystemExit) as e:
        calibrate.main(["--probes", "attention:16"])
    assert e.value.code == 2 and "expected MODEL:D" in capsys.readouterr().err
    assert calibrate.main(["--train-examples", "100000", "--out", "/nonexistent/never", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --train-examples/--steps:") and not Path("/nonexistent").exists()


def study_cells(*flags) -> list[grids.Cell]:
    args = common.parser("fig1", "", fig1.TASKS, fig1.MODELS).parse_args(["--preset", "study", *flags])
    return common.resolve("fig1", args, fig1.TASKS, fig1.MODELS)[1]


def test_the_study_preset_trains_each_mixer_at_its_own_rate_sizes_first():
    cells = study_cells("--search")
    preset = presets.PRESETS["study"]
    assert {(c.mixer, c.lr) for c in cells} == {(m, lr) for m in presets.STUDY_MIXERS for lr in preset.lrs[m]}
    sizes = [c.size for c in cells]
    assert sizes == sorted(sizes), "cells ordered by size first: the small columns finish first"
    assert {c.lr for c in study_cells("--lrs", "1e-3")} == {1e-3}  # --lrs wins over the preset's


def test_collect_trains_nothing_and_writes_nothing_without_results(tmp_path, capsys):
    argv = [
        "--preset",
        "tiny",
        "--tasks",
        "lis",
        "--sizes",
        "4",
        "--mixers",
        "standard",
        "--out",
        str(tmp_path),
        "--data-root",
        str(tmp_path / "data"),
        "--compile-cache",
        "none",
        "--collect",
        "--quiet",
    ]
    assert fig1.main(argv) == 0
    assert "no cell of this grid has a result yet" in capsys.readouterr().out
    assert not (tmp_path / "data").exists() and not list(tmp_path.rglob("*.json"))


@pytest.mark.slow
def test_calibrate_trains_every_data_size_for_the_same_steps(tmp_path, capsys):
    argv = [
        "--size",
        "4",
        "--probes",
        "standard:8",
        "--lrs",
        "3e-3",
        "--train-examples",
        "512",
        "1024",
        "--steps",
        "16",
        "--out",
        str(tmp_path),
        "--data-root",
        str(tmp_path / "data"),
        "--quiet",
    ]
    assert calibrate.main(argv) == 0
    rows = collect.read_csv(tmp_path / "calibrate" / "results.csv")
    assert sorted((r["train_examples"], r["epochs"], r["steps"]) for r in rows) == [(512, 2, 16), (1024, 1, 16)]
    assert (tmp_path / "calibrate" / "calibration.png").stat().st_size > 5_000
    capsys.readouterr()
    assert calibrate.main([*argv, "--report"]) == 0
    assert "2 of 2 cells have a result" in capsys.readouterr().out


@pytest.mark.slow
def test_the_gpu_study_script_runs_each_size_then_collects(tmp_path):
    env = {
        **os.environ,
        "OUT": str(tmp_path / "out"),
        "PRESET": "tiny",
        "SIZES": "4 6",
        "DIMS": "8 16",
        "MODELS": "standard",
        "PYTHON": sys.executable,
        "JAX_PLATFORMS": "cpu",
    }
    done = subprocess.run(
        ["bash", "experiments/gpu_study.sh", "400"], cwd=ROOT, env=env, text=True, capture_output=True, timeout=900
    )
    assert done.returncode == 0, done.stderr
    said = (tmp_path / "out" / "sizes.txt").read_text().splitlines()
    assert [line.split(":")[0] for line in said] == ["size 4", "size 6"] and all("exit 0" in s for s in said)
    rows = collect.read_csv(tmp_path / "out" / "results.csv")
    assert {r["size"] for r in rows} == {4, 6} and {r["seed"] for r in rows} == {0, 1}


@pytest.mark.parametrize("flags", [["--sizes", "0"], ["--mixers", "nope"]])
def test_the_study_script_refuses_a_bad_flag_before_any_worker_starts(tmp_path, flags):
    env = {**os.environ, "PYTHON": sys.executable, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        ["bash", "experiments/study.sh", str(tmp_path / "out"), "fig1", *flags],
        cwd=ROOT,
        env=env,
        text=True,
        capture_output=True,
        timeout=300,
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert flags[0] in done.stderr and not (tmp_path / "out").exists()


FAKE_PYTHON = """#!/usr/bin/env bash
# Stands in for python: records each call; a worker waits to be stopped and says how it ended.
echo "start $*" >> "$CALLS"
case " $* " in *" --dry-run "*) echo "estimate"; exit 0 ;; esac
trap 'echo "stopped $$" >> "$CALLS"; kill $child; exit 143' TERM
sleep 60 & child=$!
wait $child
echo "ended $$" >> "$CALLS"
"""


@pytest.mark.parametrize("signal_name, code", [("TERM", 143), ("INT", 130)])
def test_an_interrupted_study_stops_its_workers_and_starts_nothing_more(tmp_path, signal_name, code):
    """SIGTERM or SIGINT to study.sh stops both workers (each would checkpoint its run) and the
    script exits with the signal's code; the last pass over the grid never starts."""
    fake, calls = tmp_path / "python", tmp_path / "calls.txt"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    env = {**os.environ, "PYTHON": str(fake), "CALLS": str(calls)}
    study = subprocess.Popen(
        ["bash", "experiments/study.sh", str(tmp_path / "out"), "fig1", "--sizes", "3"], cwd=ROOT, env=env, text=True
    )
    deadline = time.monotonic() + 60
    while _count(calls, "start") < 3 and time.monotonic() < deadline:  # the dry run, then two workers
        time.sleep(0.1)
    time.sleep(0.5)  # the workers' traps are set
    study.send_signal(getattr(signal, "SIG" + signal_name))
    assert study.wait(timeout=60) == code
    lines = calls.read_text().splitlines()
    assert _count(calls, "start") == 3 and "--dry-run" in lines[0], lines
    assert _count(calls, "stopped") == 2 and _count(calls, "ended") == 0, lines


def _count(path: Path, word: str) -> int:
    return sum(line.startswith(word) for line in path.read_text().splitlines()) if path.exists() else 0
