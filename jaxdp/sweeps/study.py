"""From every run of a study to its answers: the best learning rate per cell, the smallest D per
seed, and their spread over seeds.

A *cell* is one (task, size, series, D, training examples, seed); a study may train it at
several learning rates (``--lrs``). `select` keeps, per cell, the run with the best
*validation* score (never the test score: the test set is scored once and chooses nothing);
runs scored before validation sets existed fall back on the test score, and a cell has then
one run. A *column* is one (task, size, series, training examples); its smallest D reaching
the threshold is found per seed (`min_d_by_seed`, with `jaxdp.sweeps.study.censored_min_d`'s
censoring) and summarised over seeds as a median with its range (`median_point`).

A min D is *inconclusive* (†) when a smaller D of the column stopped below the threshold on
its budget (``stop_reason`` ``budget``): trained longer it might have reached it. A column is
*non-monotone* (‡) when a larger D scored lower than a smaller one by more than `MONOTONE_SLACK`:
the search's assumption that the score grows with D fails there, and a D it skipped might reach
the threshold.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

THRESHOLD = 0.9
#: how a grid's smallest D reaching the threshold bounds the true one: measured (a smaller D of
#: the grid failed), "below" (the grid's smallest D already reaches: the true min D is at most
#: it) or "above" (no D of the grid reaches: the true min D is beyond the largest tried)
CENSORING = ("", "below", "above")
#: how far a larger D may score below a smaller one before a column counts as non-monotone:
#: about two standard errors of the difference of two scores on 1,000 examples near 0.8
MONOTONE_SLACK = 0.04
CELL_KEY = ("task", "size", "mixer", "variant", "dim", "train_examples", "seed")


def series(row: dict) -> str:
    """A row's line in tables and plots: its mixer, and its variant if it has one."""
    return row["mixer"] + (f" ({row['variant']})" if row.get("variant") else "")


def planned_steps(row: dict) -> int:
    """The steps a results row's run was given (its budget; ``steps`` is what it ran), counted
    as training counts them (`jaxdp.training.run.total_steps`, from a run's config.json)."""
    return row["epochs"] * (row["train_examples"] // row["batch_size"])


def censored_min_d(scores: dict[int, float], threshold: float) -> tuple[int, str]:
    """(D, censoring) from one size's {D: score}: the smallest D reaching `threshold`, "below"
    if it is the smallest D tried; else the largest D tried, "above"."""
    good = [d for d, a in scores.items() if a >= threshold]
    if not good:
        return max(scores), "above"
    return min(good), "below" if min(good) == min(scores) else ""


def score(row: dict, metric: str = "accuracy") -> float | None:
    """What choices read: the validation `metric` where the run has one, else the test one."""
    valid = row.get(f"valid_{metric}")
    return valid if valid is not None else row.get(metric)


def _rank(row: dict, metric: str) -> tuple:
    """Best first: the higher validation score, then the lower validation loss, then the smaller lr."""
    s, loss = score(row, metric), row.get("valid_loss")
    return (-(s if s is not None else -math.inf), loss if loss is not None else math.inf, row.get("lr") or 0.0)


def select(rows: Sequence[dict], metric: str = "accuracy") -> list[dict]:
    """One row per cell: its run with the best validation `metric` over the learning rates,
    with ``lrs_tried``. Where the rows hold several training-set sizes, each becomes its own
    series (``n=<count>`` joins the variant). Selecting selected rows changes nothing."""
    cells: dict[tuple, list[dict]] = {}
    for r in rows:
        cells.setdefault(tuple(r.get(k) for k in CELL_KEY), []).append(r)
    several_sizes = len({r.get("train_examples") for r in rows}) > 1
    out = []
    for runs in cells.values():
        best = dict(min(runs, key=lambda r: _rank(r, metric)))
        best["lrs_tried"] = max(len(runs), best.get("lrs_tried") or 1)
        if several_sizes and f"n={best['train_examples']}" not in best.get("variant", ""):
            best["variant"] = " ".join(filter(None, (best.get("variant", ""), f"n={best['train_examples']}")))
        out.append(best)
    return out


@dataclasses.dataclass(frozen=True)
class SeedMinD:
    """One seed's smallest D of a column: `dim` and its `censoring` (`jaxdp.sweeps.study.CENSORING`),
    the run that decided it (its lr, stop reason and score), whether it is inconclusive and
    whether its scores fall as D grows (`non_monotone`)."""

    dim: int
    censoring: str
    lr: float | None
    stop_reason: str
    best_score: float
    inconclusive: bool
    non_monotone: bool = False


def non_monotone(scores: dict[int, float], slack: float = MONOTONE_SLACK) -> bool:
    """Whether some D scores more than `slack` below a smaller D of the same column."""
    best_so_far = -math.inf
    for d in sorted(scores):
        if scores[d] < best_so_far - slack:
            return True
        best_so_far = max(best_so_far, scores[d])
    return False


def seed_min_d(runs: Sequence[dict], threshold: float = THRESHOLD, metric: str = "accuracy") -> SeedMinD:
    """The `SeedMinD` of one column and seed from its selected rows (one per D)."""
    by_dim = {r["dim"]: r for r in runs}
    scores = {d: score(r, metric) for d, r in by_dim.items()}
    dim, censoring = censored_min_d(scores, threshold)
    deciding = by_dim[dim]
    below = [r for d, r in by_dim.items() if (d < dim or censoring == "above") and score(r, metric) < threshold]
    return SeedMinD(
        dim,
        censoring,
        deciding.get("lr"),
        deciding.get("stop_reason") or "",
        max(score(r, metric) for r in runs),
        any(r.get("stop_reason") == "budget" for r in below),
        non_monotone(scores),
    )


def column_key(row: dict) -> tuple:
    return row["task"], series(row), row["size"]


def min_d_by_seed(
    rows: Sequence[dict], threshold: float = THRESHOLD, metric: str = "accuracy"
) -> dict[tuple, dict[int, SeedMinD]]:
    """(task, series, size) -> {seed: SeedMinD}, from all runs (selected here)."""
    columns: dict[tuple, dict[int, list[dict]]] = {}
    for r in select(rows, metric):
        if score(r, metric) is not None:
            columns.setdefault(column_key(r), {}).setdefault(r.get("seed", 0), []).append(r)
    return {
        key: {seed: seed_min_d(runs, threshold, metric) for seed, runs in sorted(seeds.items())}
        for key, seeds in sorted(columns.items())
    }


def _order(m: SeedMinD) -> tuple:
    """A censored-above D lies beyond every D tried: it sorts last."""
    return (m.censoring == "above", m.dim)


def median_point(per_seed: dict[int, SeedMinD]) -> tuple[SeedMinD, SeedMinD, SeedMinD]:
    """(median, smallest, largest) of a column's per-seed min D; the median of an even count is
    the lower middle one (a grid value, never a mean of two)."""
    ranked = sorted(per_seed.values(), key=_order)
    return ranked[(len(ranked) - 1) // 2], ranked[0], ranked[-1]


def seed_dims(
    rows: Sequence[dict], threshold: float = THRESHOLD, metric: str = "accuracy"
) -> dict[tuple[str, str], dict[int, list[int]]]:
    """(task, series) -> {L: each seed's min D}, over the sizes where no seed's min D is censored
    (what `bootstrap_exponent` resamples)."""
    lengths = {(r["task"], r["size"]): r["L"] for r in rows}
    out: dict[tuple[str, str], dict[int, list[int]]] = {}
    for (task, name, size), per_seed in min_d_by_seed(rows, threshold, metric).items():
        if not any(m.censoring for m in per_seed.values()):
            out.setdefault((task, name), {})[lengths[(task, size)]] = [m.dim for m in per_seed.values()]
    return out


def bootstrap_exponent(
    per_length: dict[int, Sequence[int]], draws: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float] | None:
    """The slope of log(median min D) against log L and its bootstrap interval: `draws` times,
    each length's seeds are resampled with replacement and the slope of the medians refitted.
    `per_length` maps L to the measured (uncensored) min D of each seed; None below 3 lengths."""
    lengths = sorted(per_length)
    if len(lengths) < 3:
        return None
    x = np.log(np.asarray(lengths, float))
    median = lambda values: float(np.median(values))  # noqa: E731
    slope = float(np.polyfit(x, np.log([median(per_length[L]) for L in lengths]), 1)[0])
    rng = np.random.default_rng(seed)
    slopes = []
    for _ in range(draws):
        y = [median(rng.choice(per_length[L], size=len(per_length[L]))) for L in lengths]
        slopes.append(np.polyfit(x, np.log(y), 1)[0])
    low, high = np.quantile(slopes, [(1 - level) / 2, (1 + level) / 2])
    return slope, float(low), float(high)
