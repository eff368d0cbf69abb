"""The study engine: validation splits, learning rates chosen on them, the stopping rule, the
aggregation over seeds and the search for the smallest D (`jaxdp.sweeps.study`, `jaxdp.training.stopping`,
`jaxdp.sweeps.search`)."""

import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from experiments import fig1 as fig1_module
from jaxdp import tasks
from jaxdp.models import ModelConfig
from jaxdp.sweeps import collect, grids, search, study, tables
from jaxdp.tasks import builder
from jaxdp.tasks import dataset as ds
from jaxdp.training.protocol import TrainConfig
from jaxdp.training.run import train
from tests.faults.common import ROOT, one_line, params

pytestmark = pytest.mark.integration  # trains, runs commands or compiles whole models


def row(dim, valid, test, *, lr=1e-3, seed=0, size=4, model="linear", stop="budget", **extra):
    return {
        "task": "lis",
        "size": size,
        "L": 4 * size - 5,
        "mixer": model,
        "variant": "",
        "dim": dim,
        "seed": seed,
        "lr": lr,
        "train_examples": 1000,
        "accuracy": test,
        "valid_accuracy": valid,
        "valid_loss": 1 - valid,
        "stop_reason": stop,
        **extra,
    }


# ------------------------------------------------------------------------------ validation


def prompts(d: ds.Dataset) -> set[bytes]:
    return {bytes(d.tokens[i, : d.prompt_len[i]]) for i in range(len(d))}


def test_the_validation_split_is_disjoint_a_prefix_of_any_larger_one_and_leaves_old_files_alone(tmp_path):
    task = tasks.get("lis", 4, value_range=16)
    train_set, test_set, _ = builder.build_to_dir(task, tmp_path / "d", 600, 60, seed=3, progress=False)
    before = {p.name: p.read_bytes() for p in (tmp_path / "d").iterdir()}
    valid = builder.validation_to_dir(tmp_path / "d", train_set, test_set, 80)
    assert len(valid) == 80 and valid.split == "valid" and valid.seed == 3
    assert not prompts(valid) & (prompts(train_set) | prompts(test_set))
    small = builder.build_validation(train_set, test_set, 30)
    np.testing.assert_array_equal(small.tokens, valid.tokens[:30])
    assert {p.name: p.read_bytes() for p in (tmp_path / "d").iterdir() if p.name in before} == before
    again = builder.validation_to_dir(tmp_path / "d", train_set, test_set, 80)  # loaded, not drawn again
    assert again.digest == valid.digest
    other_train, other_test = builder.build(task, 600, 60, seed=4, progress=False)
    with pytest.raises(ds.DatasetError, match="not drawn apart"):
        builder.validation_to_dir(tmp_path / "d", other_train, other_test, 80)


# ------------------------------------------------------------------------------ selection


def test_selection_reads_validation_where_it_disagrees_with_test():
    """lr 1e-2 scores better on the test set, 1e-3 on the validation set: 1e-3 is chosen, and
    the min D follows the validation scores (D 16 reaches 0.9 on test only)."""
    rows = [
        row(16, valid=0.70, test=0.95, lr=1e-2),
        row(16, valid=0.85, test=0.80, lr=1e-3),
        row(32, valid=0.93, test=0.88, lr=1e-2),
        row(32, valid=0.91, test=0.97, lr=1e-3),
    ]
    chosen = {r["dim"]: r for r in study.select(rows)}
    assert (chosen[16]["lr"], chosen[32]["lr"]) == (1e-3, 1e-2) and chosen[16]["lrs_tried"] == 2
    assert study.select(study.select(rows)) == study.select(rows)
    [(per_seed)] = study.min_d_by_seed(rows).values()
    assert per_seed[0].dim == 32 and per_seed[0].lr == 1e-2
    line = next(x for x in tables.min_d_table(rows).splitlines() if x.startswith("| linear"))
    assert line == "| linear | 32 † · lr 0.01 · budget |"
    # the accuracy table shows the test scores of the chosen runs
    assert "| lis | 4 | linear | 0.80 | 0.88 |" in tables.accuracy_table(rows)


def test_min_d_over_seeds_is_the_median_with_its_range_and_censoring():
    """Seeds 0, 1, 2 reach 0.9 first at D 16, 64 and never (> 64): median 64 [16, > 64]; a
    smaller D that stopped on its budget marks the cell inconclusive, one that plateaued not."""
    scores = {0: (0.5, 0.92, 0.95), 1: (0.4, 0.6, 0.91), 2: (0.3, 0.5, 0.7)}
    rows = [
        row(d, valid=v, test=v, seed=s, stop="plateau") for s, vs in scores.items() for d, v in zip((16, 32, 64), vs)
    ]
    per_seed = next(iter(study.min_d_by_seed(rows).values()))
    assert [(m.dim, m.censoring) for m in per_seed.values()] == [(32, ""), (64, ""), (64, "above")]
    median, low, high = study.median_point(per_seed)
    assert (median.dim, low.dim, (high.dim, high.censoring)) == (64, 32, (64, "above"))
    assert "| linear | 64 [32, > 64] · plateau |" in tables.min_d_table(rows)
    rows[0]["stop_reason"] = "budget"  # seed 0, D 16: below 0.9 when its budget ran out
    assert "| linear | 64 [32, > 64] † · plateau |" in tables.min_d_table(rows)  # stop: the deciding runs'
    assert tables.min_d_points(rows)[("lis", "linear")] == [(11, 64, "")]


def test_a_column_whose_score_falls_as_d_grows_is_marked_non_monotone():
    """The study's L = 37 sparse seed 1: 0.768 at D 32, 0.655 at 64, both below 0.9. A fall
    within the slack, or a rise, is not marked; a fall anywhere later in the column is, even
    after a rise; one seed's fall marks the cell."""
    assert study.non_monotone({32: 0.768, 64: 0.655})
    assert not study.non_monotone({32: 0.768, 64: 0.768 - study.MONOTONE_SLACK + 0.001})
    assert not study.non_monotone({16: 0.5, 32: 0.7, 64: 0.95})
    assert study.non_monotone({16: 0.5, 32: 0.8, 64: 0.85, 96: 0.7})
    assert not study.non_monotone({96: 0.5, 16: 0.52})  # the order is D's, not the dict's
    seed0 = [row(32, valid=0.875, test=0.87), row(64, valid=0.892, test=0.89)]
    seed1 = [row(32, valid=0.768, test=0.77, seed=1), row(64, valid=0.655, test=0.66, seed=1)]
    [per_seed] = study.min_d_by_seed(seed0 + seed1).values()
    assert [m.non_monotone for m in per_seed.values()] == [False, True]
    assert "| linear | > 64 (0.892) [> 64, > 64] † ‡ · budget |" in tables.min_d_table(seed0 + seed1)
    assert "| linear | > 64 (0.892) † · budget |" in tables.min_d_table(seed0)
    just_below = [row(32, valid=0.8, test=0.8), row(64, valid=0.899, test=0.91)]
    assert "> 64 (0.899)" in tables.min_d_table(just_below)  # never rounded up to the threshold


def test_the_bootstrap_interval_brackets_the_exponent_and_is_exact_without_noise():
    slope, low, high = study.bootstrap_exponent({L: [8 * math.sqrt(L)] * 3 for L in (16, 64, 256)})
    assert slope == pytest.approx(0.5) and low == pytest.approx(0.5) and high == pytest.approx(0.5)
    rng = np.random.default_rng(1)
    noisy = {L: list(4 * math.sqrt(L) * np.exp(rng.normal(0, 0.2, 5))) for L in (16, 32, 64, 128, 256)}
    slope, low, high = study.bootstrap_exponent(noisy)
    assert low < slope < high and low < 0.5 < high and high - low < 0.5
    assert study.bootstrap_exponent({16: [8], 64: [16]}) is None


# -------------------------------------------------------------------------------- stopping


def rule_by_hand(scores, solved_at, p, delta):
    """The stopping rule written out for a whole list: the check index it stops at, and why."""
    for i in range(len(scores)):
        if scores[i] >= solved_at:
            return i, "solved"
        if i >= p and max(scores[i - p + 1 : i + 1]) < max(scores[: i - p + 1]) + delta:
            return i, "plateau"
    return None, "budget"


@pytest.fixture(scope="module")
def lis_data(tmp_path_factory):
    task = tasks.get("lis", 4, value_range=16)
    train_set, test_set = builder.build(task, 512, 40, seed=0, progress=False)
    return task, train_set, test_set, builder.build_validation(train_set, test_set, 48)


def stopping_run(lis_data, folder, **stop):
    task, train_set, test_set, valid = lis_data
    config = ModelConfig(
        mixer="linear", dim=16, num_layers=1, max_len=task.max_len, vocab_size=len(task.vocab), dropout=0.0
    )
    train_config = TrainConfig(
        epochs=12,
        batch_size=32,
        lr=3e-3,
        warmup_epochs=1,
        check_every=8,
        check_examples=48,
        log_every=4,
        checkpoint_every=1000,
        eval_examples=40,
        **stop,
    )
    return lambda **kw: train(
        folder, task, config, train_config, train_set, test_set, valid_set=valid, progress=False, **kw
    )


def checks(folder):
    import json

    lines = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["valid_accuracy"]) for r in lines if "valid_accuracy" in r]


def test_the_stopping_rule_stops_where_it_says_and_a_cut_run_resumes_exactly(lis_data, tmp_path):
    rule = {"solved_at": 0.99, "plateau_checks": 2, "plateau_delta": 0.1}
    whole = stopping_run(lis_data, tmp_path / "whole", **rule)()
    seen = checks(tmp_path / "whole")
    index, reason = rule_by_hand([s for _, s in seen], 0.99, 2, 0.1)
    assert whole["stop_reason"] == reason and reason != "budget", seen
    assert whole["steps"] == seen[index][0] == seen[-1][0] and whole["steps"] < 12 * 16
    assert whole["valid"]["examples"] == 48 and "accuracy" in whole
    cut = stopping_run(lis_data, tmp_path / "cut", **rule)
    assert cut(stop_after=whole["steps"] - 5) == {"stopped_at": whole["steps"] - 5}
    resumed = cut()
    assert {k: v for k, v in resumed.items() if k != "train_seconds"} == {
        k: v for k, v in whole.items() if k != "train_seconds"
    }
    assert checks(tmp_path / "cut") == seen
    for a, b in zip(params(tmp_path / "cut"), params(tmp_path / "whole"), strict=True):
        np.testing.assert_array_equal(a, b)
    shutil.rmtree(tmp_path / "whole" / "checkpoints")  # a run stopped by the rule is finished: no training
    assert stopping_run(lis_data, tmp_path / "whole", **rule)()["steps"] == whole["steps"]


# ---------------------------------------------------------------------------------- search


@pytest.mark.parametrize("G", range(1, 10))
@pytest.mark.parametrize("start", search.FIRSTS)
def test_bisection_finds_the_threshold_of_every_monotone_grid_within_its_probe_budget(G, start):
    dims = [8 * 2**i for i in range(G)]
    budget = math.ceil(math.log2(G)) + 1 if G > 1 else 1
    if start == "middle":
        budget = math.ceil(math.log2(G + 1))
    for first in range(G + 1):  # dims[first:] reach; first == G: none does
        reached, visits = {}, 0
        while (d := search.next_dim(dims, reached, start)) is not None:
            assert d not in reached, "a D probed twice"
            reached[d] = dims.index(d) >= first
            visits += 1
        assert visits <= search.most_probes(G, start) == budget
        path = list(reached)  # in probe order: the cost estimate after each prefix bounds the rest
        for done in range(len(path) + 1):
            bound = search.costliest_left(dims, {d: reached[d] for d in path[:done]}, start)
            rest = path[done:]
            assert len(rest) <= len(bound) and sum(d**2 for d in rest) <= sum(d**2 for d in bound), (path, done)
            assert bound == [] if not rest else set(bound) <= set(dims), (path, done)
        assert search.found_dim(dims, reached) == (dims[first] if first < G else None)
        if start == "middle" and first < G - 1:
            assert dims[-1] not in reached, "the largest D trained although a smaller one reaches"


def test_a_search_from_the_middle_probes_the_largest_d_only_when_everything_below_fails():
    dims, reached = [8, 12, 16, 24, 32, 48, 64, 96, 128], {}
    while (d := search.next_dim(dims, reached, "middle")) is not None:
        reached[d] = False
    assert list(reached) == [32, 64, 96, 128] and search.found_dim(dims, reached) is None
    with pytest.raises(ValueError, match="first: expected one of largest, middle"):
        search.next_dim(dims, {}, "smallest")


def test_search_shards_split_the_grid_by_whole_columns():
    cells = grids.grid({"lis": (4, 6)}, ["standard", "linear"], {"lis": (8, 16, 32)}, seeds=(0, 1), lrs=(1e-3, 3e-3))
    parts = [search.shard(cells, f"{i}/3") for i in range(3)]
    assert sorted(c.label for p in parts for c in p) == sorted(c.label for c in cells)
    for part in parts:
        assert all(len(column) == 3 * 2 for column in search.columns(part).values())  # every D and lr of it
    assert len(search.columns(cells)) == 2 * 2 * 2


SEARCH = [
    "--preset",
    "tiny",
    "--tasks",
    "lis",
    "--sizes",
    "4",
    "--mixers",
    "standard",
    "--dims",
    "4",
    "8",
    "16",
    "32",
    "--set",
    "epochs=3",
    "--set",
    "train_examples=512",
    "--set",
    "test_examples=40",
    "--set",
    "valid_examples=40",
    "--set",
    "eval_examples=40",
    "--set",
    "batch_size=32",
    "--lrs",
    "1e-2",
    "--threshold",
    "0.2",
    "--checkpoint-every",
    "16",
    "--quiet",
]


#: 130 s of subprocesses: -m slow. In the default run its parts have cousins: the bisection over every
#: monotone grid (above), the committed study columns replayed as search paths
#: (tests/experiments/test_committed_results.py), and SIGTERM resumes (tests/faults/)
@pytest.mark.slow
def test_the_search_finds_the_full_grids_min_d_in_at_most_log2_g_plus_1_probes_and_resumes_after_sigterm(
    tmp_path, capsys
):
    """The full grid, trained uninterrupted, is the reference: a search over it trains nothing and
    follows the bisection's path; a fresh search cut by SIGTERM mid-probe and run again trains
    exactly the grid's cells on that path, with the same scores and the same min D."""
    out = ["--out", str(tmp_path), "--data-root", str(tmp_path / "data")]
    assert fig1_module.main([*SEARCH, *out]) == 0, capsys.readouterr().err
    grid = {r["digest"]: r for r in collect.read_csv(tmp_path / "fig1" / "tiny" / "results.csv")}
    assert not search.violations(list(grid.values()), 0.2), "the score does not grow with D: no search can match"
    [full] = study.min_d_by_seed(list(grid.values()), 0.2).values()
    reached = {}  # the search's path through the trained grid
    while (d := search.next_dim([4, 8, 16, 32], reached)) is not None:
        reached[d] = next(r for r in grid.values() if r["dim"] == d)["valid_accuracy"] >= 0.2
    assert len(reached) <= 3 == search.most_probes(4) and search.found_dim([4, 8, 16, 32], reached) == (
        full[0].dim if full[0].censoring != "above" else None
    ), reached
    capsys.readouterr()
    assert fig1_module.main([*SEARCH, *out, "--search"]) == 0
    said = capsys.readouterr().out
    assert f"0 cells trained, 0 rescored, {len(reached)} already done, {4 - len(reached)} not needed" in said, said
    fresh = [
        "--out",
        str(tmp_path / "fresh"),
        "--data-root",
        str(tmp_path / "data"),
        "--search",
        "--compile-cache",
        str(tmp_path / "compile-cache"),
    ]  # the grid's: its probe rate, its programs
    cut = run_fig1(*SEARCH, *fresh, fault="train.step@88:SIGTERM")  # 48 steps a cell: second probe, after a checkpoint
    assert cut.returncode == 143 and one_line(cut.stderr).startswith("interrupted (SIGTERM)"), cut.stderr
    again = run_fig1(*SEARCH, *fresh)
    assert again.returncode == 0 and "1 already done" in again.stdout, again.stderr
    searched = collect.read_csv(tmp_path / "fresh" / "fig1" / "tiny" / "results.csv")
    assert sorted(r["dim"] for r in searched) == sorted(reached)
    assert all(r == grid[r["digest"]] for r in searched)
    assert study.min_d_by_seed(searched, 0.2)[("lis", "standard", 4)][0].dim == full[0].dim


def run_fig1(*argv, fault: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "JAXDP_FAULT"}
    env.update({"JAX_PLATFORMS": "cpu", **({"JAXDP_FAULT": fault} if fault else {})})
    return subprocess.run(
        [sys.executable, "-m", "experiments.fig1", *argv],
        cwd=ROOT,
        env=env,
        text=True,
        capture_output=True,
        timeout=600,
    )
