"""The committed CPU study (benchmarks/results/cpu/, `experiments/cpu_study.sh`) against the code
that would produce it now: every results.csv has exactly the columns `collect.write_csv` writes, its
rows are exactly the cells `python -m experiments.<script> --preset cpu` runs, each row's digest is
the one the current protocol gives that cell, and the committed min-D table is the one the rows
give. A change to the preset, the protocol's identity or the CSV schema fails here until the study
is rerun and recommitted."""

import csv
from pathlib import Path

import pytest

from experiments import common, fig1, fig2
from jaxdp.sweeps import collect, grids, search, study, tables

STUDY = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "cpu"
SCRIPTS = {"fig1": (fig1.TASKS, fig1.MODELS, common.grid_from_args), "fig2": (fig2.TASKS, fig2.MODELS, fig2.cells)}


def cpu_plans(script: str) -> list[grids.Plan]:
    tasks, models, make_cells = SCRIPTS[script]
    args = common.parser(script, "", tasks, models).parse_args(["--preset", "cpu"])
    preset, cells = common.resolve(script, args, tasks, models, make_cells)
    return grids.validate(cells, preset.protocol)


def key(task, size, model, variant, dim, seed) -> tuple:
    return (task, int(size), model, variant, int(dim), int(seed))


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_committed_results_are_what_the_code_collects(script):
    path = STUDY / script / "results.csv"
    with open(path, newline="") as handle:
        assert tuple(next(csv.reader(handle))) == collect.CSV_FIELDS
    rows = collect.read_csv(path)
    committed = {key(r["task"], r["size"], r["mixer"], r["variant"], r["dim"], r["seed"]): r["digest"] for r in rows}
    assert len(committed) == len(rows), "a cell appears twice"
    expected = {
        key(p.cell.task, p.cell.size, p.cell.mixer, p.cell.variant, p.cell.dim, p.cell.seed): Path(p.path).name
        for p in cpu_plans(script)
    }
    assert committed.keys() == expected.keys()
    stale = [k for k in expected if committed[k] != expected[k]]
    assert not stale, f"{len(stale)} rows have another protocol's digest, e.g. {stale[0]}"
    assert all(0.0 <= r["accuracy"] <= 1.0 and r["steps"] > 0 for r in rows)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_committed_min_d_table_and_heatmap_follow_from_the_rows(script):
    rows = collect.read_csv(STUDY / script / "results.csv")
    assert (STUDY / script / "min_d.md").read_text() == tables.min_d_table(rows) + "\n"
    assert (STUDY / script / f"{script}.png").stat().st_size > 10_000


# ------------------------------------------------------------------------ the searched study

SEARCHED = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "study"
SEARCH_SCRIPTS = {
    "fig1": (fig1.TASKS, fig1.MODELS, common.grid_from_args),
    "fig2": (fig2.TASKS, fig2.MODELS, fig2.cells),
    "table2": (("arithmetic",), ("standard", "linear", "sparse"), common.grid_from_args),
}
PARTS = sorted(p.parent.name for p in SEARCHED.glob("*/command.txt"))


def searched_grid(folder: Path):
    """The preset, cells, `--search-from` and threshold of the command that collected a part."""
    argv = (folder / "command.txt").read_text().split()
    script = argv[2].removeprefix("experiments.")
    tasks, models, make_cells = SEARCH_SCRIPTS[script]
    args = common.parser(script, "", tasks, models).parse_args(argv[3:])
    assert args.search and not args.shard, "a committed study part is collected over its whole grid, searched"
    preset, cells = common.resolve(script, args, tasks, models, make_cells)
    return preset, cells, args.search_from or preset.search_first, args.threshold


def check_searched_part(folder: Path) -> None:
    """Every row of ``folder/results.csv`` is a cell of ``folder/command.txt``'s grid under its
    current digest, and each column holds exactly the D its search visits given those scores:
    all of them when the column is finished, the probes so far while the study runs (then its
    next D is missing, never a D off the path)."""
    preset, cells, first, threshold = searched_grid(folder)
    with open(folder / "results.csv", newline="") as handle:
        assert tuple(next(csv.reader(handle))) == collect.CSV_FIELDS
    rows = collect.read_csv(folder / "results.csv")
    digests = {Path(p.path).name: p.cell for p in grids.validate(cells, preset.protocol)}
    assert all(r["digest"] in digests for r in rows), "a row of another protocol or outside the grid"
    assert len({r["digest"] for r in rows}) == len(rows)
    for key, column in search.columns(cells).items():
        mine: dict[int, list[dict]] = {}  # D -> its runs (one per learning rate)
        for r in rows:
            if search.column_key(digests[r["digest"]]) == key:
                mine.setdefault(r["dim"], []).append(r)
        dims, reached = sorted({c.dim for c in column}), {}
        while (d := search.next_dim(dims, reached, first)) is not None and d in mine:
            reached[d] = study.score(study.select(mine[d])[0]) >= threshold
        assert set(mine) == set(reached), (key, sorted(mine), sorted(reached))


@pytest.mark.parametrize("part", PARTS)
def test_each_committed_study_column_is_the_path_its_search_takes(part):
    check_searched_part(SEARCHED / part)


@pytest.mark.slow
def test_the_path_check_accepts_a_real_search_and_refuses_rows_off_its_path(tmp_path, capsys):
    """The check above, on a tiny searched sweep: it passes as collected, and fails once the
    first probe's row is dropped while later probes stay (rows off the search's path)."""
    flags = "--preset tiny --search --search-from middle --tasks lis --sizes 4 --mixers standard --dims 8 12 16 24"
    assert (
        fig1.main(
            [
                *flags.split(),
                "--out",
                str(tmp_path),
                "--data-root",
                str(tmp_path / "data"),
                "--quiet",
                "--threshold",
                "0.2",
            ]
        )
        == 0
    )
    part = tmp_path / "fig1" / "tiny"
    (part / "command.txt").write_text(f"python -m experiments.fig1 {flags} --threshold 0.2\n")
    check_searched_part(part)
    rows = collect.read_csv(part / "results.csv")
    assert 2 <= len(rows) < 4, "the search visits some D, not all"
    first = search.next_dim([8, 12, 16, 24], {}, "middle")
    collect.write_csv([r for r in rows if r["dim"] != first], part / "results.csv")  # the first probe gone
    with pytest.raises(AssertionError):
        check_searched_part(part)


@pytest.mark.parametrize("part", PARTS)
def test_committed_study_tables_follow_from_the_rows(part):
    rows = collect.read_csv(SEARCHED / part / "results.csv")
    assert (SEARCHED / part / "min_d.md").read_text() == tables.min_d_table(rows) + "\n"


@pytest.mark.parametrize("part", ["calibration", "doubling"])
def test_the_committed_calibration_is_what_calibrate_reports(part):
    """benchmarks/results/study/calibration/ and doubling/ (`python -m experiments.calibrate ...
    --report`): the columns `collect` writes, every row a cell of the calibration's protocol (its
    digest under `study_protocol` at its own data size and steps), and the table the report prints."""
    from experiments import calibrate, presets

    folder = SEARCHED / part
    with open(folder / "results.csv", newline="") as handle:
        assert tuple(next(csv.reader(handle))) == collect.CSV_FIELDS
    rows = collect.read_csv(folder / "results.csv")
    for r in rows:
        steps = study.planned_steps(r)
        cell = grids.Cell(r["task"], r["size"], r["mixer"], r["dim"], r["seed"], lr=r["lr"])
        plan = grids.plan(cell, presets.study_protocol(r["train_examples"], steps))
        assert Path(plan.path).name == r["digest"], (cell, steps)
    assert (folder / "calibration.md").read_text() == calibrate.report(rows) + "\n"
    assert (folder / "calibration.png").stat().st_size > 10_000


def test_the_committed_gpu_preset_checks_are_cells_of_its_protocol():
    """benchmarks/results/study/gpu-check/ (the `gpu` preset's protocol trained on this CPU at its
    smallest sizes): the columns `collect` writes, every row a cell of that protocol under its
    current digest, at one of the paper's smallest sizes."""
    from experiments import presets
    from jaxdp import tasks as task_registry

    folder = SEARCHED / "gpu-check"
    with open(folder / "results.csv", newline="") as handle:
        assert tuple(next(csv.reader(handle))) == collect.CSV_FIELDS
    rows = collect.read_csv(folder / "results.csv")
    assert rows
    protocol = presets.PRESETS["gpu"].protocol
    for r in rows:
        assert r["size"] == task_registry.PAPER_SIZES[r["task"]][0], "a check is at the preset's smallest size"
        plan = grids.plan(grids.Cell(r["task"], r["size"], r["mixer"], r["dim"], r["seed"]), protocol)
        assert Path(plan.path).name == r["digest"], r
