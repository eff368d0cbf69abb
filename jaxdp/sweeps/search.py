"""A search for the smallest D reaching the threshold, training only the cells it visits.

A *column* is one (task, size, mixer, variant, training examples, seed) with its sorted D grid;
a *probe* of D trains that D at every learning rate of the grid and reads the best one's
validation score (`jaxdp.sweeps.study.select`, `jaxdp.sweeps.study.score`). Assuming the score grows with
D, `next_dim` bisects the grid. Where it starts is the search's `first` (`FIRSTS`):

* ``largest``: probe the largest D first (if it fails, the column is censored above after one
  probe), then bisect below it: at most ⌈log₂ G⌉ + 1 probes of G;
* ``middle``: plain bisection from the middle D: at most ⌈log₂ (G + 1)⌉ probes, and the largest
  D is trained only when every smaller probe failed. Cheaper where most columns reach within the
  grid (large D cost the most), dearer where most do not.

The next probe is a function of the finished probes alone, and finished cells are skipped
(`jaxdp.sweeps.runner.run`), so a search cut off anywhere and run again follows the same path and
trains only what is missing. `shard` splits a grid by columns.

The search only ever sees scores that agree with its assumption along its own path; any pair of
finished cells of a column that breaks it (a smaller D reaching, a larger one not) is reported
by `violations`, whoever trained them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

from tqdm.auto import tqdm

from jaxdp.runtime.errors import ProtocolError
from jaxdp.sweeps import collect, grids, runner, study
from jaxdp.sweeps.grids import Cell
from jaxdp.training.protocol import Protocol


def column_key(cell: Cell) -> tuple:
    return cell.task, cell.size, cell.mixer, cell.variant, cell.options, cell.train_examples, cell.seed


def columns(cells: Sequence[Cell]) -> dict[tuple, list[Cell]]:
    """The cells of each column, in grid order."""
    out: dict[tuple, list[Cell]] = {}
    for cell in cells:
        out.setdefault(column_key(cell), []).append(cell)
    return out


def shard(cells: Sequence[Cell], spec: str | None) -> list[Cell]:
    """The cells of columns i, i+n, … for spec "i/n" (`jaxdp.sweeps.grids.shard`'s rule, by column)."""
    grid = columns(cells)
    return [cell for key in grids.shard(list(grid), spec) for cell in grid[key]]


FIRSTS = ("largest", "middle")


def most_probes(grid_size: int, first: str = "largest") -> int:
    """The most D values one column's search visits: ⌈log₂ G⌉ + 1 (``largest`` first) or
    ⌈log₂ (G + 1)⌉ (``middle``)."""
    if first == "middle":
        return math.ceil(math.log2(grid_size + 1))
    return math.ceil(math.log2(grid_size)) + 1 if grid_size > 1 else 1


def left_to_train(
    exp_dir: str | Path | None,
    plans: Sequence[grids.Plan],
    protocol: Protocol,
    first: str = "largest",
    threshold: float = study.THRESHOLD,
) -> list[grids.Plan]:
    """The plans whose cost bounds what a search of `plans` still trains (`exp_dir` None: nothing
    is finished). In each column the search is replayed over its finished probes; then it may
    still probe at most `most_probes` less those, all inside the bracket they leave, and a larger
    D costs more: so no path costs more than the unfinished plans of the bracket's largest D."""
    by_column: dict[tuple, list[grids.Plan]] = {}
    for plan in plans:
        by_column.setdefault(column_key(plan.cell), []).append(plan)
    done = {p.path for p in plans if exp_dir is not None and (Path(exp_dir) / p.path / "result.json").exists()}
    left = []
    for column in by_column.values():
        dims = sorted({p.cell.dim for p in column})
        reached = _replay(exp_dir, column, dims, done, protocol, first, threshold)
        costliest = set(costliest_left(dims, reached, first))
        left += [p for p in column if p.cell.dim in costliest and p.path not in done]
    return left


def _replay(
    exp_dir, column: list[grids.Plan], dims: list[int], done: set, protocol: Protocol, first: str, threshold: float
) -> dict:
    """The search of one column (over `dims`) walked over its finished probes only (`done`, empty
    without `exp_dir`): D -> reached."""

    def finished(dim: int) -> bool | None:
        probe = [p for p in column if p.cell.dim == dim]
        if any(p.path not in done for p in probe):  # unfinished: nothing to read
            return None
        rows = collect.collect(exp_dir, [p.cell for p in probe], protocol)
        if len(rows) < len(probe):
            return None
        return study.score(study.select(rows)[0]) >= threshold

    return walk(dims, first, finished)[0]


def costliest_left(dims: Sequence[int], reached: dict[int, bool], first: str = "largest") -> list[int]:
    """The D whose cost bounds the rest of a search that has probed `reached` (`next_dim`): at most
    `most_probes` less those probes remain, all inside the bracket they leave; [] when it is over."""
    if next_dim(dims, reached, first) is None:
        return []
    low = max((d for d, ok in reached.items() if not ok), default=0)
    high = min((d for d, ok in reached.items() if ok), default=math.inf)
    bracket = sorted(d for d in dims if low < d < high)
    return bracket[max(len(bracket) - most_probes(len(dims), first) + len(reached), 0) :]


def next_dim(dims: Sequence[int], reached: dict[int, bool], first: str = "largest") -> int | None:
    """The next D to probe, given the probes done (`reached`: D -> reached the threshold), or
    None when the search is over: bisection for the smallest D that reaches, from the largest D
    or from the middle one (`first`)."""
    if first not in FIRSTS:
        raise ValueError(f"first: expected one of {', '.join(FIRSTS)}, got {first!r}")
    dims = sorted(dims)
    if first == "largest":
        if dims[-1] not in reached:
            return dims[-1]
        if not reached[dims[-1]]:
            return None
    # every D below dims[low] fails; dims[high] reaches (high == len(dims): none known to)
    low, high = 0, len(dims) - 1 if reached.get(dims[-1]) else len(dims)
    while low < high:
        # the middle of what is left; with none known to reach, the lower middle of the untried
        middle = (low + high) // 2 if high < len(dims) else (low + high - 1) // 2
        if dims[middle] not in reached:
            return dims[middle]
        low, high = (low, middle) if reached[dims[middle]] else (middle + 1, high)
    return None


def walk(dims: Sequence[int], first: str, probe: Callable[[int], bool | None]) -> tuple[dict[int, bool], int | None]:
    """The search over `dims` (`next_dim`), asking `probe` whether each D it visits reaches the
    threshold: (D -> reached, the D where `probe` could not say, None when the search ended).
    Training a column and replaying its finished probes both walk it here."""
    reached: dict[int, bool] = {}
    while (dim := next_dim(dims, reached, first)) is not None:
        if (answer := probe(dim)) is None:
            return reached, dim
        reached[dim] = answer
    return reached, None


def found_dim(dims: Sequence[int], reached: dict[int, bool]) -> int | None:
    """The smallest D probed that reaches (the search's answer once `next_dim` is None)."""
    good = [d for d in dims if reached.get(d)]
    return min(good) if good else None


def check(cells: Sequence[Cell]) -> None:
    """Refuse a grid the search cannot bisect: a column with one D."""
    for column in columns(cells).values():
        if len({c.dim for c in column}) < 2:
            raise ProtocolError(f"--search bisects a D grid: give at least two D (--dims), got {column[0].dim} only")


def run(
    exp_dir: str | Path,
    cells: Sequence[Cell],
    protocol: Protocol,
    *,
    threshold: float = study.THRESHOLD,
    max_cells: int | None = None,
    progress: bool = True,
    first: str = "largest",
    **run_options,
) -> dict[str, list[Cell]]:
    """Search every column of `cells` (`next_dim`, from `first`), training each probe's cells with
    `jaxdp.sweeps.runner.run` (`run_options`: data_root, reporting, compile_cache). Returns the cells by
    outcome, `jaxdp.sweeps.runner.OUTCOMES`, the cells the search did not need as "not_needed"."""
    check(cells)
    grids.validate(cells, protocol)  # every cell, before anything trains
    outcome: dict[str, list[Cell]] = {name: [] for name in runner.OUTCOMES}
    grid = columns(cells)
    run_options.setdefault("datasets", {})  # read once, for every probe
    bar = tqdm(total=len(grid), unit="column", disable=not progress, dynamic_ncols=True)
    for column in grid.values():
        bar.set_description(f"search {column[0].label.rsplit('/d=', 1)[0]}")
        visited, complete = _search_column(
            exp_dir, column, protocol, threshold, outcome, max_cells, progress, first, run_options
        )
        if complete:
            outcome["not_needed"] += [c for c in column if c.dim not in visited]
        bar.update(1)
    bar.close()
    return outcome


def _search_column(
    exp_dir,
    column: list[Cell],
    protocol: Protocol,
    threshold: float,
    outcome: dict,
    max_cells: int | None,
    progress: bool,
    first: str,
    run_options: dict,
) -> tuple[set[int], bool]:
    """Probe one column until the search ends (complete) or a probe cannot finish now: the D
    it visited and whether it is complete."""

    def trained(dim: int) -> bool | None:
        left = None if max_cells is None else max_cells - len(outcome["ran"])
        if left is not None and left <= 0:
            return None
        probe = [c for c in column if c.dim == dim]
        done = runner.run(exp_dir, probe, protocol, max_cells=left, progress=progress, **run_options)
        for name, part in done.items():
            outcome[name] += part
        rows = collect.collect(exp_dir, probe, protocol)
        if len(rows) < len(probe):  # failed, busy elsewhere or cut by max_cells: rerun to go on
            return None
        return study.score(study.select(rows)[0]) >= threshold

    reached, stopped_at = walk(sorted({c.dim for c in column}), first, trained)
    return set(reached), stopped_at is None


def violations(rows: Sequence[dict], threshold: float = study.THRESHOLD) -> list[str]:
    """One line per column whose finished cells break the assumption that the score grows with
    D: a D reaching `threshold` below one that does not."""
    lines = []
    by_column: dict[tuple, dict[int, float]] = {}
    for r in study.select(rows):
        by_column.setdefault((r["task"], r["size"], study.series(r), r["seed"]), {})[r["dim"]] = study.score(r)
    for (task, size, name, seed), scores in sorted(by_column.items()):
        good = [d for d, s in scores.items() if s is not None and s >= threshold]
        worse = sorted(d for d, s in scores.items() if good and d > min(good) and s is not None and s < threshold)
        if worse:
            lines.append(
                f"{task} size {size} {name} seed {seed}: D={min(good)} reaches {threshold:.0%} but "
                f"D={', '.join(map(str, worse))} does not; the search assumes the score grows with D"
            )
    return lines
