"""The committed CPU study (benchmarks/results/cpu/, `experiments/cpu_study.sh`) against the code
that would produce it now: every results.csv has exactly the columns `sweep.write_csv` writes, its
rows are exactly the cells `python -m experiments.<script> --preset cpu` runs, each row's digest is
the one the current protocol gives that cell, and the committed min-D table is the one the rows
give. A change to the preset, the protocol's identity or the CSV schema fails here until the study
is rerun and recommitted."""

import csv
from pathlib import Path

import pytest

from experiments import common, fig1, fig2
from jaxdp import plots, sweep

STUDY = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "cpu"
SCRIPTS = {"fig1": (fig1.TASKS, fig1.MODELS, common.grid_from_args), "fig2": (fig2.TASKS, fig2.MODELS, fig2.cells)}


def cpu_plans(script: str) -> list[sweep.Plan]:
    tasks, models, make_cells = SCRIPTS[script]
    args = common.parser(script, "", tasks, models).parse_args(["--preset", "cpu"])
    preset, cells = common.resolve(script, args, tasks, models, make_cells)
    return sweep.validate(cells, preset.protocol)


def key(task, size, model, variant, dim, seed) -> tuple:
    return (task, int(size), model, variant, int(dim), int(seed))


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_committed_results_are_what_the_code_collects(script):
    path = STUDY / script / "results.csv"
    with open(path, newline="") as handle:
        assert tuple(next(csv.reader(handle))) == sweep.CSV_FIELDS
    rows = sweep.read_csv(path)
    committed = {key(r["task"], r["size"], r["model"], r["variant"], r["dim"], r["seed"]): r["digest"] for r in rows}
    assert len(committed) == len(rows), "a cell appears twice"
    expected = {key(p.cell.task, p.cell.size, p.cell.model, p.cell.variant, p.cell.dim, p.cell.seed):
                Path(p.path).name for p in cpu_plans(script)}  # fmt: skip
    assert committed.keys() == expected.keys()
    stale = [k for k in expected if committed[k] != expected[k]]
    assert not stale, f"{len(stale)} rows have another protocol's digest, e.g. {stale[0]}"
    assert all(0.0 <= r["accuracy"] <= 1.0 and r["steps"] > 0 for r in rows)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_committed_min_d_table_and_heatmap_follow_from_the_rows(script):
    rows = sweep.read_csv(STUDY / script / "results.csv")
    assert (STUDY / script / "min_d.md").read_text() == plots.min_d_table(rows) + "\n"
    assert (STUDY / script / f"{script}.png").stat().st_size > 10_000


def test_the_committed_gpu_cell_is_the_quick_cell_gpu_check_runs():
    """benchmarks/results/gpu/fig1_results.csv (`benchmarks/gpu_check.sh` on an H200) holds the one
    `quick` Figure 1 cell the script asks for, under the current protocol's digest."""
    flags = ["--preset", "quick", "--yes", "--tasks", "lis", "--models", "standard", "--sizes", "10", "--dims", "64"]
    assert " ".join(flags[2:]) in (STUDY.parent.parent / "gpu_check.sh").read_text().replace("--quiet ", "")
    args = common.parser("fig1", "", fig1.TASKS, fig1.MODELS).parse_args(flags)
    preset, cells = common.resolve("fig1", args, fig1.TASKS, fig1.MODELS, common.grid_from_args)
    (plan,) = sweep.validate(cells, preset.protocol)
    (row,) = sweep.read_csv(STUDY.parent / "gpu" / "fig1_results.csv")
    assert key(row["task"], row["size"], row["model"], row["variant"], row["dim"], row["seed"]) == \
        key(plan.cell.task, plan.cell.size, plan.cell.model, plan.cell.variant, plan.cell.dim, plan.cell.seed)
    assert row["digest"] == Path(plan.path).name
    assert (STUDY.parent / "gpu" / "fig1_min_d.md").read_text() == plots.min_d_table([row]) + "\n"
