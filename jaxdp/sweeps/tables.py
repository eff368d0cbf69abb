"""Tables from sweep results (rows as returned by `jaxdp.sweeps.collect.collect`), read
through `jaxdp.sweeps.study.select` like the figures (`jaxdp.sweeps.figures`).

* `accuracy_table`: the score per D of every (task, size, series).
* `min_d_table`, `min_d_spread`: the smallest D reaching the threshold, per seed, with its
  censoring (a min D the grid only bounds: its smallest D already reaches, or none does).
* `scaling_table`, `fit_exponent`: the exponent of min D against L, fitted to uncensored sizes
  only (at least `MIN_FIT_POINTS`), with a bootstrap over seeds (`jaxdp.sweeps.study`).
* `table2`: the minimum GFLOPs per sequence of a model reaching the threshold, per size (the
  paper's Table 2): the paper's 2·N·L at the paper's L beside our full count at our L, with the
  D; `paper_table2_markdown` recomputes the paper's own cells.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence

import numpy as np

from jaxdp.models import flops
from jaxdp.models.config import ModelConfig
from jaxdp.sweeps.study import (
    MONOTONE_SLACK,
    THRESHOLD,
    bootstrap_exponent,
    median_point,
    min_d_by_seed,
    seed_dims,
    select,
    series,
)
from jaxdp.tasks import PAPER_MAX_LENGTHS

MODEL_ORDER = ("standard", "sparse", "linear")


def series_names(rows) -> list[str]:
    """Series in the order standard, sparse (its variants), linear, then any other."""
    names = sorted({series(r) for r in rows})
    rank = lambda name: (MODEL_ORDER.index(name.split(" ")[0]) if name.split(" ")[0] in MODEL_ORDER else 99, name)  # noqa: E731
    return sorted(names, key=rank)


def accuracy_table(rows: Sequence[dict], metric: str = "accuracy") -> str:
    """Markdown: one line per (task, size, mixer and variant), `metric` per D of each seed's best
    learning rate (`jaxdp.sweeps.study.select`): the mean, and [lowest–highest] over several seeds."""
    rows = select(rows)
    dims = sorted({r["dim"] for r in rows})
    groups: dict[tuple, dict[int, list[float]]] = {}
    for r in rows:
        groups.setdefault((r["task"], r["size"], series(r)), {}).setdefault(r["dim"], []).append(r[metric])
    seeds = len({r.get("seed") for r in rows})
    lines = [
        f"{metric} (test set" + (f"; mean [lowest–highest] over {seeds} seeds" if seeds > 1 else "") + "):",
        "",
        "| task | size | mixer | " + " | ".join(f"D={d}" for d in dims) + " |",
        "|---" * (3 + len(dims)) + "|",
    ]
    for (task, size, model), by_dim in sorted(groups.items()):
        cells = [_spread(by_dim[d]) if d in by_dim else "" for d in dims]
        lines.append(f"| {task} | {size} | {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _spread(values: Sequence[float]) -> str:
    text = f"{np.mean(values):.2f}"
    return text if len(values) == 1 else f"{text} [{min(values):.2f}–{max(values):.2f}]"


MIN_FIT_POINTS = 3  # uncensored sizes an exponent is fitted to, at least


def min_d_points(
    rows: Sequence[dict], threshold: float = THRESHOLD, metric: str = "accuracy"
) -> dict[tuple[str, str], list[tuple[int, int, str]]]:
    """(task, series) -> [(L, D, censoring)] for every size: D is the median over seeds of the
    smallest D of the grid whose (validation) `metric` reaches `threshold` (the largest D tried
    when none does; `jaxdp.sweeps.study.min_d_by_seed`), censoring one of `CENSORING`."""
    out: dict[tuple[str, str], list[tuple[int, int, str]]] = {}
    lengths = {(r["task"], r["size"]): r["L"] for r in rows}
    for (task, name, size), per_seed in min_d_by_seed(rows, threshold, metric).items():
        median = median_point(per_seed)[0]
        out.setdefault((task, name), []).append((lengths[(task, size)], median.dim, median.censoring))
    return out


def min_dims(
    rows: Sequence[dict], threshold: float = THRESHOLD, metric: str = "accuracy"
) -> dict[tuple[str, str], list[tuple[int, int]]]:
    """(task, series) -> [(L, smallest D reaching `threshold`)] over the sizes where that D is
    measured, not censored (`min_d_points`): it reaches, and a smaller D of the grid does not."""
    out = {
        key: [(L, D) for L, D, censored in points if not censored]
        for key, points in min_d_points(rows, threshold, metric).items()
    }
    return {key: points for key, points in out.items() if points}


def fitted_exponent(points: Sequence[tuple[int, int]]) -> tuple[float, float] | None:
    """`fit_exponent` of uncensored (L, D) points, or None below `MIN_FIT_POINTS` of them (an
    exponent through two points has no error bar)."""
    return fit_exponent(*zip(*points)) if len(points) >= MIN_FIT_POINTS else None


def exponent_label(points: Sequence[tuple[int, int]], short: bool = False) -> str:
    """ "0.52 ± 0.04", or why no exponent is given (`short`: for a legend)."""
    fit = fitted_exponent(points)
    if fit:
        return f"{fit[0]:.2f} ± {fit[1]:.2f}"
    if short:
        return f"no fit ({len(points)}/{MIN_FIT_POINTS} sizes)"
    return f"no exponent ({len(points)} uncensored size{'' if len(points) == 1 else 's'}, {MIN_FIT_POINTS} needed)"


def fit_exponent(L: Sequence[float], D: Sequence[float]) -> tuple[float, float]:
    """Least-squares slope b of log D = a + b log L and its standard error (nan below 3 points)."""
    x, y = np.log(np.asarray(L, float)), np.log(np.asarray(D, float))
    if len(x) < 2 or np.ptp(x) == 0:
        return math.nan, math.nan
    b, a = np.polyfit(x, y, 1)
    if len(x) < 3:
        return float(b), math.nan
    resid = y - (a + b * x)
    se = math.sqrt(resid @ resid / (len(x) - 2) / ((x - x.mean()) @ (x - x.mean())))
    return float(b), se


def scaling_table(rows: Sequence[dict], threshold: float = THRESHOLD, metric: str = "accuracy") -> str:
    lines = [
        f"Smallest D with {metric} >= {threshold:.0%} (median over seeds); L = our longest sequence without "
        "<eos> (max_len − 1). (L, ≤ D): the grid's smallest D already reaches; (L, > D): no D of the grid "
        f"reaches. Exponents are fitted to the other points only, where there are at least {MIN_FIT_POINTS}; "
        "the interval is a 95% bootstrap over seeds, on the sizes where no seed is censored.",
        "",
        "| task | mixer | (L, min D) | exponent ± s.e. | bootstrap over seeds |",
        "|---|---|---|---|---|",
    ]
    by_seed = seed_dims(rows, threshold, metric)
    for (task, model), points in min_d_points(rows, threshold, metric).items():
        pts = ", ".join(f"({L}, {CENSOR_MARKS[c]}{D})" for L, D, c in points)
        lines.append(
            f"| {task} | {model} | {pts} | {exponent_label([(L, D) for L, D, c in points if not c])} | "
            f"{bootstrap_label(by_seed.get((task, model), {}))} |"
        )
    return "\n".join(lines) + (
        "\n\nTheory: exponent 0 for the standard model (Theorem 4.1: a D independent of L "
        "solves the DP), 1/2 for sparse and linear (Theorem 4.2: D = O(sqrt L) suffices; Theorem "
        "4.4: Ω̃(sqrt L) is needed, in the paper's regression setting with log precision)."
    )


def bootstrap_label(per_length: dict[int, list[int]]) -> str:
    """ "0.48 [0.31, 0.66], 3 seeds", or why there is none."""
    fit = bootstrap_exponent(per_length)
    if fit is None:
        return f"none ({len(per_length)}/{MIN_FIT_POINTS} uncensored sizes)"
    seeds = min(len(v) for v in per_length.values())
    return f"{fit[0]:.2f} [{fit[1]:.2f}, {fit[2]:.2f}], {seeds} seed{'s' if seeds > 1 else ''}"


def min_d_table(rows: Sequence[dict], threshold: float = THRESHOLD, metric: str = "accuracy") -> str:
    """Markdown: per task, one line per series, the smallest D whose (validation) `metric`
    reaches `threshold` at each size, per seed (`jaxdp.sweeps.study.min_d_by_seed`); with several
    seeds the median [smallest, largest]; with several learning rates the winners at that D;
    with the stopping rule, why those runs stopped."""
    out = [
        f"Smallest D with {metric} >= {threshold:.0%}, read on the validation set (the test set for runs "
        "scored before it existed). ≤ D: the grid's smallest D already does; > D: none of the grid's D does "
        "(the best score in brackets); † inconclusive: a smaller D stopped below the threshold at the end of its "
        f"budget; ‡ non-monotone: a larger D scored over {MONOTONE_SLACK * 100:.0f} points below a smaller one, so a D "
        "the search skipped might reach the threshold."
        " Several seeds: median [smallest, largest]. lr: the best learning rate at that D (by validation "
        "score); stop: why those runs stopped. L: our longest sequence without <eos>."
    ]
    found = min_d_by_seed(rows, threshold, metric)
    show_lr = len({r.get("lr") for r in rows}) > 1
    for task in sorted({r["task"] for r in rows}):
        sizes = sorted({r["size"] for r in rows if r["task"] == task})
        lengths = {r["size"]: r["L"] for r in rows if r["task"] == task}
        lines = [
            "| mixer | " + " | ".join(f"size {s} (L={lengths[s]})" for s in sizes) + " |",
            "|---" * (len(sizes) + 1) + "|",
        ]
        for name in series_names([r for r in rows if r["task"] == task]):
            cells = [_min_d_cell(found.get((task, name, s)), show_lr) for s in sizes]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        out.append(f"**{task}**\n\n" + "\n".join(lines))
    return "\n\n".join(out)


#: how a censored min D is written (`CENSORING`): "≤ D" at most, "> D" beyond the grid
CENSOR_MARKS = {"": "", "below": "≤ ", "above": "> "}


def _min_d_text(m) -> str:
    return CENSOR_MARKS[m.censoring] + str(m.dim)


def _min_d_cell(per_seed: dict | None, show_lr: bool) -> str:
    """One column's cell of `min_d_table` from its `jaxdp.sweeps.study.SeedMinD` per seed."""
    if not per_seed:
        return ""
    median, low, high = median_point(per_seed)
    text = _min_d_text(median)
    if median.censoring == "above":
        text += f" ({max(m.best_score for m in per_seed.values()):.3f})"  # 3 places: 0.899 is no 0.90
    if len(per_seed) > 1:
        text += f" [{_min_d_text(low)}, {_min_d_text(high)}]"
    if any(m.inconclusive for m in per_seed.values()):
        text += " †"
    if any(m.non_monotone for m in per_seed.values()):
        text += " ‡"
    if show_lr:
        text += " · lr " + ", ".join(f"{lr:g}" for lr in sorted({m.lr for m in per_seed.values() if m.lr}))
    reasons = collections.Counter(m.stop_reason for m in per_seed.values() if m.stop_reason)
    if reasons:
        text += " · " + (
            next(iter(reasons))
            if len(reasons) == 1
            else ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
        )
    return text


def min_d_spread(
    rows: Sequence[dict], threshold: float = THRESHOLD, metric: str = "accuracy"
) -> dict[tuple[str, str], dict[int, tuple[int, int]]]:
    """(task, series) -> {L: (smallest, largest) min D over seeds}, as drawn beside each median."""
    lengths = {(r["task"], r["size"]): r["L"] for r in rows}
    out: dict[tuple[str, str], dict[int, tuple[int, int]]] = {}
    for (task, name, size), per_seed in min_d_by_seed(rows, threshold, metric).items():
        _, low, high = median_point(per_seed)
        out.setdefault((task, name), {})[lengths[(task, size)]] = (low.dim, high.dim)
    return out


TABLE2_ROWS = ("standard", "linear", "sparse")  # the paper's rows, always shown


def _table2_series(rows) -> list[str]:
    return list(TABLE2_ROWS) + [name for name in series_names(rows) if name not in TABLE2_ROWS]


def table2(
    rows: Sequence[dict], threshold: float = THRESHOLD, task: str = "arithmetic", metric: str = "accuracy"
) -> list[dict]:
    """Per (model, size): the smallest D reaching `threshold` (median over seeds), with the paper's GFLOPs (2·N·L at
    the paper's L, ``paper_L``) and our full count (at our L)."""
    out, found = [], min_d_by_seed(rows, threshold, metric)
    for model in _table2_series(rows):
        for size in sorted({r["size"] for r in rows if r["task"] == task}):
            per_seed = found.get((task, model, size))
            median = median_point(per_seed)[0] if per_seed else None
            dim = median.dim if median is not None and median.censoring != "above" else None
            match = [
                r for r in rows if r["task"] == task and series(r) == model and r["size"] == size and r["dim"] == dim
            ]
            first = match[0] if match else {}
            out.append(
                {
                    "mixer": model,
                    "size": size,
                    "L": first.get("L"),
                    "paper_L": first.get("paper_L"),
                    "dim": dim,
                    "paper_gflops": first.get("paper_gflops"),
                    "forward_gflops": first.get("forward_gflops"),
                }
            )
    return out


def table2_markdown(entries: Sequence[dict], threshold: float = THRESHOLD) -> str:
    """Cells "paper GFLOPs (L=paper's) · full GFLOPs (L=ours) · D", – where no D reached the threshold."""
    sizes = sorted({e["size"] for e in entries})
    lengths = {e["size"]: (e["paper_L"], e["L"]) for e in entries if e["L"] is not None}
    head = " | ".join(
        f"n={s}" + (f" (paper L={lengths[s][0]}, ours {lengths[s][1]})" if s in lengths else "") for s in sizes
    )
    lines = [
        f"Minimum GFLOPs per sequence of a model reaching {threshold:.0%}: the paper's 2·N·L at the "
        "paper's L, then our full count at our L, then the smallest D that reached it.",
        "",
        f"| mixer | {head} |",
        "|---" * (1 + len(sizes)) + "|",
    ]
    for model in dict.fromkeys(e["mixer"] for e in entries):
        cells = []
        for s in sizes:
            e = next((e for e in entries if e["mixer"] == model and e["size"] == s), None)
            cells.append(
                "–"
                if e is None or e["dim"] is None
                else f"{e['paper_gflops']:.3f} · full {e['forward_gflops']:.3f} · D={e['dim']}"
            )
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: The paper's Table 2 (docs/paper.md §4): forward GFLOPs per sequence on Arithmetic at the paper's
#: lengths L = 87, 221, 355, 505, with the hidden size D that 2·N·L implies for each cell (see
#: docs/models.md, "FLOPs").
PAPER_TABLE2_L = PAPER_MAX_LENGTHS["arithmetic"]


PAPER_TABLE2 = {
    "standard": ((0.027, 0.266, 0.426, 0.605), (64, 128, 128, 128)),
    "linear": ((0.422, 4.220, 6.756, 9.584), (256, 512, 512, 512)),
    "sparse": ((0.106, 1.055, 1.690, 2.399), (128, 256, 256, 256)),
}


def paper_table2_markdown(vocab_size: int = 20) -> str:
    """The paper's Table 2 next to `paper_flops` (2·N·L) and the full count, at the implied D
    (3 layers, 4 heads; 20 tokens is the arithmetic vocabulary)."""
    rows = ["| mixer | L | D | paper GFLOPs | 2·N·L | full count | full / paper |", "|---|---|---|---|---|---|---|"]
    for model, (figures, dims) in PAPER_TABLE2.items():
        for L, D, figure in zip(PAPER_TABLE2_L, dims, figures):
            cfg = ModelConfig(mixer=model, dim=D, max_len=L, vocab_size=vocab_size)
            ours, full = flops.paper_flops(cfg, L) / 1e9, flops.forward_flops(cfg, L) / 1e9
            rows.append(
                f"| {model} | {L} | {D} | {figure:.3f} | {ours:.3f} ({ours / figure - 1:+.1%}) "
                f"| {full:.3f} | {full / figure:.2f}× |"
            )
    return "\n".join(rows)
