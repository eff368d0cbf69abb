"""Figures and tables from sweep results (rows as returned by `jaxdp.sweep.collect`).

Rows are grouped by *series*: the model, and its variant where a sweep names one (Figure 2's
sparse windows). Every function takes the metric to read (`accuracy`, the paper's greedy
final-answer accuracy, by default; `teacher_forced_exact` is the benchmark's), and reads every
run of a study through `jaxdp.study.select`: per cell, the learning rate with the best
validation score. Scores drawn are the test set's, over seeds as a mean and a range; the
smallest D is decided on validation scores, per seed, and given as a median and a range.

* `heatmaps`: the paper's Figure 1/2 layout, one panel per (series, task): problem size across,
  hidden size D up, each cell annotated with its score.
* `scaling`: the smallest D reaching the threshold against L, log-log, with the fitted exponent
  per series next to the theory's sqrt(L) (`fit_exponent`). L is each task's longest sequence
  without <eos> (our max_len − 1). A min D the grid only bounds (`min_d_points`: its smallest
  D already reaches, or none does) is drawn as a triangle and never fitted; an exponent needs
  `MIN_FIT_POINTS` measured sizes.
* `table2`: the minimum GFLOPs per sequence of a model reaching the threshold, per size (the
  paper's Table 2): the paper's 2·N·L at the paper's L beside our full count at our L, with the D.
"""

from __future__ import annotations

import collections
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from jaxdp import files
from jaxdp.study import (CENSORING, THRESHOLD, bootstrap_exponent, censored_min_d, median_point,  # noqa: F401
                         min_d_by_seed, planned_steps, seed_dims, select, series)


def pyplot():
    """matplotlib.pyplot drawing off-screen (Agg), except inside Jupyter, whose inline backend
    (set by ipykernel through MPLBACKEND) stays so that a notebook's own figures still show."""
    import matplotlib

    if "inline" not in os.environ.get("MPLBACKEND", ""):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path) -> Path:
    if fig.get_layout_engine() is None:  # a figure laid out by its own engine (constrained) keeps it
        fig.tight_layout()
    try:
        return files.write_figure(fig, path, dpi=120)  # atomic: a kill never leaves half a PNG
    finally:
        pyplot().close(fig)


MODEL_ORDER = ("standard", "sparse", "linear")


def _series_names(rows) -> list[str]:
    """Series in the order standard, sparse (its variants), linear, then any other."""
    names = sorted({series(r) for r in rows})
    rank = lambda name: (MODEL_ORDER.index(name.split(" ")[0]) if name.split(" ")[0] in MODEL_ORDER else 99, name)  # noqa: E731
    return sorted(names, key=rank)


def _seed_scores(rows, metric: str = "accuracy", **where) -> dict[tuple[int, int], list[float]]:
    """(size, dim) -> `metric` of each seed's selected run, for rows matching `where`."""
    cells: dict[tuple[int, int], list[float]] = {}
    for r in select(rows):
        if all((series(r) if k == "series" else r[k]) == v for k, v in where.items()) and r.get(metric) is not None:
            cells.setdefault((r["size"], r["dim"]), []).append(r[metric])
    return cells


def heatmaps(rows: Sequence[dict], path: str | Path, title: str = "", metric: str = "accuracy") -> Path:
    """One panel per (series, task); `metric` in %, darker is better."""
    plt = pyplot()
    task_names = sorted({r["task"] for r in rows})
    models = _series_names(rows)
    wide = len(task_names) == 1  # a single task: the models side by side
    n_rows, n_cols = (1, len(models)) if wide else (len(models), len(task_names))
    fig, axes = plt.subplots(n_rows, n_cols, squeeze=False, figsize=(3.2 * n_cols + 1.6, 2.8 * n_rows + 0.6),
                             layout="constrained")  # fmt: skip
    lengths = {(r["task"], r["size"]): r["L"] for r in rows}
    image = None
    for i, model in enumerate(models):
        for j, task in enumerate(task_names):
            ax = axes[0][i] if wide else axes[i][j]
            seeds = _seed_scores(rows, metric, series=model, task=task)
            sizes = sorted({s for s, _ in seeds})
            dims = sorted({d for _, d in seeds})
            grid = np.full((len(dims), len(sizes)), np.nan)
            for (s, d), values in seeds.items():
                grid[dims.index(d), sizes.index(s)] = 100 * np.mean(values)
            image = ax.imshow(grid, origin="lower", cmap="Blues", vmin=0, vmax=100, aspect="auto")
            for (s, d), values in seeds.items():
                y, x = dims.index(d), sizes.index(s)
                ax.text(x, y, _heat_label(values), ha="center", va="center", fontsize=8 if len(values) == 1 else 6.5,
                        color="white" if grid[y, x] > 60 else "black")  # fmt: skip
            ax.set_xticks(range(len(sizes)), [f"{s}\nL={lengths[(task, s)]}" for s in sizes])
            ax.set_yticks(range(len(dims)), [str(d) for d in dims])
            ax.set_title(f"{task} · {model}", fontsize=9)
            if wide or i == len(models) - 1:
                ax.set_xlabel("problem size")
            if (i == 0) if wide else (j == 0):
                ax.set_ylabel("hidden size D")
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label=f"{metric} (%)")
    seeds = len({r.get("seed") for r in rows})
    if title or seeds > 1:
        fig.suptitle(title + (f" (each cell: mean, and lowest–highest over {seeds} seeds)" if seeds > 1 else ""))
    return save_figure(fig, path)


def _heat_label(values: Sequence[float]) -> str:
    """A heatmap cell: the mean in %, and the range over seeds under it where there are several."""
    text = f"{100 * np.mean(values):.0f}"
    return text if len(values) == 1 else f"{text}\n{100 * min(values):.0f}–{100 * max(values):.0f}"


def draw_seed_spread(ax, by_x: dict[float, list[float]], label: str) -> None:
    """One line through the mean over seeds at each x, with bars from the lowest to the highest."""
    xs = sorted(by_x)
    mean = np.array([np.mean(by_x[v]) for v in xs])
    spread = [mean - [min(by_x[v]) for v in xs], [max(by_x[v]) for v in xs] - mean]
    ax.errorbar(xs, mean, yerr=spread, fmt="o-", ms=3, capsize=2, label=label)


def curves(rows: Sequence[dict], path: str | Path, x: str = "dim", metric: str = "accuracy") -> Path:
    """One panel per (task, size), one line per series: `metric` against `x` ("dim", or
    "state_size": the numbers the decode state holds after L tokens, all layers and heads):
    the mean over seeds, with bars from the lowest seed to the highest."""
    plt = pyplot()
    rows = select(rows)
    panels = sorted({(r["task"], r["size"]) for r in rows})
    task_names = sorted({t for t, _ in panels})
    cols = max([sum(1 for t, _ in panels if t == task) for task in task_names] or [1])
    fig, axes = plt.subplots(len(task_names), cols, squeeze=False, figsize=(3.6 * cols, 2.9 * len(task_names)))
    for i, task in enumerate(task_names):
        sizes = sorted(s for t, s in panels if t == task)
        for j in range(cols):
            ax = axes[i][j]
            if j >= len(sizes):
                ax.axis("off")
                continue
            for name in _series_names(rows):
                by_x: dict[float, list[float]] = {}
                for r in rows:
                    if (r["task"], r["size"]) == (task, sizes[j]) and series(r) == name and r.get(x) is not None:
                        by_x.setdefault(r[x], []).append(r[metric])
                if by_x:
                    draw_seed_spread(ax, by_x, name)
            ax.set_xscale("log", base=2)
            ax.set(title=f"{task}, size {sizes[j]}", xlabel="hidden size D" if x == "dim" else "state size (numbers)",
                   ylabel=metric, ylim=(-0.05, 1.05))  # fmt: skip
            ax.legend(fontsize=6)
    return save_figure(fig, path)


MIN_FIT_POINTS = 3  # uncensored sizes an exponent is fitted to, at least


def min_d_points(rows: Sequence[dict], threshold: float = THRESHOLD,
                 metric: str = "accuracy") -> dict[tuple[str, str], list[tuple[int, int, str]]]:  # fmt: skip
    """(task, series) -> [(L, D, censoring)] for every size: D is the median over seeds of the
    smallest D of the grid whose (validation) `metric` reaches `threshold` (the largest D tried
    when none does; `jaxdp.study.min_d_by_seed`), censoring one of `CENSORING`."""
    out: dict[tuple[str, str], list[tuple[int, int, str]]] = {}
    lengths = {(r["task"], r["size"]): r["L"] for r in rows}
    for (task, name, size), per_seed in min_d_by_seed(rows, threshold, metric).items():
        median = median_point(per_seed)[0]
        out.setdefault((task, name), []).append((lengths[(task, size)], median.dim, median.censoring))
    return out


def min_dims(rows: Sequence[dict], threshold: float = THRESHOLD,
             metric: str = "accuracy") -> dict[tuple[str, str], list[tuple[int, int]]]:  # fmt: skip
    """(task, series) -> [(L, smallest D reaching `threshold`)] over the sizes where that D is
    measured, not censored (`min_d_points`): it reaches, and a smaller D of the grid does not."""
    out = {key: [(L, D) for L, D, censored in points if not censored]
           for key, points in min_d_points(rows, threshold, metric).items()}  # fmt: skip
    return {key: points for key, points in out.items() if points}


def fitted_exponent(points: Sequence[tuple[int, int]]) -> tuple[float, float] | None:
    """`fit_exponent` of uncensored (L, D) points, or None below `MIN_FIT_POINTS` of them (an
    exponent through two points has no error bar)."""
    return fit_exponent(*zip(*points)) if len(points) >= MIN_FIT_POINTS else None


def exponent_label(points: Sequence[tuple[int, int]], short: bool = False) -> str:
    """"0.52 ± 0.04", or why no exponent is given (`short`: for a legend)."""
    fit = fitted_exponent(points)
    if fit:
        return f"{fit[0]:.2f} ± {fit[1]:.2f}"
    if short:
        return f"no fit ({len(points)}/{MIN_FIT_POINTS} sizes)"
    return f"no exponent ({len(points)} uncensored sizes, {MIN_FIT_POINTS} needed)"


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
    lines = [f"Smallest D with {metric} >= {threshold:.0%} (median over seeds); L = our longest sequence without "
             "<eos> (max_len − 1). (L, ≤ D): the grid's smallest D already reaches; (L, > D): no D of the grid "
             f"reaches. Exponents are fitted to the other points only, where there are at least {MIN_FIT_POINTS}; "
             "the interval is a 95% bootstrap over seeds, on the sizes where no seed is censored.",
             "", "| task | model | (L, min D) | exponent ± s.e. | bootstrap over seeds |", "|---|---|---|---|---|"]  # fmt: skip
    by_seed = seed_dims(rows, threshold, metric)
    for (task, model), points in min_d_points(rows, threshold, metric).items():
        pts = ", ".join(f"({L}, {CENSOR_MARKS[c]}{D})" for L, D, c in points)
        lines.append(f"| {task} | {model} | {pts} | {exponent_label([(L, D) for L, D, c in points if not c])} | "
                     f"{bootstrap_label(by_seed.get((task, model), {}))} |")  # fmt: skip
    return "\n".join(lines) + ("\n\nTheory: exponent 0 for the standard model (Theorem 4.1: a D independent of L "
                              "solves the DP), 1/2 for sparse and linear (Theorem 4.2: D = O(sqrt L) suffices; Theorem "
                              "4.4: Ω̃(sqrt L) is needed, in the paper's regression setting with log precision).")


def bootstrap_label(per_length: dict[int, list[int]]) -> str:
    """"0.48 [0.31, 0.66], 3 seeds", or why there is none."""
    fit = bootstrap_exponent(per_length)
    if fit is None:
        return f"none ({len(per_length)}/{MIN_FIT_POINTS} uncensored sizes)"
    seeds = min(len(v) for v in per_length.values())
    return f"{fit[0]:.2f} [{fit[1]:.2f}, {fit[2]:.2f}], {seeds} seed{'s' if seeds > 1 else ''}"


def min_d_table(rows: Sequence[dict], threshold: float = THRESHOLD, metric: str = "accuracy") -> str:
    """Markdown: per task, one line per series, the smallest D whose (validation) `metric`
    reaches `threshold` at each size, per seed (`jaxdp.study.min_d_by_seed`); with several
    seeds the median [smallest, largest]; with several learning rates the winners at that D;
    with the stopping rule, why those runs stopped."""
    out = [f"Smallest D with {metric} >= {threshold:.0%}, read on the validation set (the test set for runs "
           "scored before it existed). ≤ D: the grid's smallest D already does; > D: none of the grid's D does "
           "(the best score in brackets); † inconclusive: a smaller D stopped below the threshold at the end of its "
           "budget. Several seeds: median [smallest, largest]. lr: the best learning rate at that D (by validation "
           "score); stop: why those runs stopped. L: our longest sequence without <eos>."]  # fmt: skip
    found = min_d_by_seed(rows, threshold, metric)
    show_lr = len({r.get("lr") for r in rows}) > 1
    for task in sorted({r["task"] for r in rows}):
        sizes = sorted({r["size"] for r in rows if r["task"] == task})
        lengths = {r["size"]: r["L"] for r in rows if r["task"] == task}
        lines = ["| model | " + " | ".join(f"size {s} (L={lengths[s]})" for s in sizes) + " |",
                 "|---" * (len(sizes) + 1) + "|"]  # fmt: skip
        for name in _series_names([r for r in rows if r["task"] == task]):
            cells = [_min_d_cell(found.get((task, name, s)), show_lr) for s in sizes]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        out.append(f"**{task}**\n\n" + "\n".join(lines))
    return "\n\n".join(out)


#: how a censored min D is written (`CENSORING`): "≤ D" at most, "> D" beyond the grid
CENSOR_MARKS = {"": "", "below": "≤ ", "above": "> "}


def _min_d_text(m) -> str:
    return CENSOR_MARKS[m.censoring] + str(m.dim)


def _min_d_cell(per_seed: dict | None, show_lr: bool) -> str:
    """One column's cell of `min_d_table` from its `jaxdp.study.SeedMinD` per seed."""
    if not per_seed:
        return ""
    median, low, high = median_point(per_seed)
    text = _min_d_text(median)
    if median.censoring == "above":
        text += f" ({max(m.best_score for m in per_seed.values()):.2f})"
    if len(per_seed) > 1:
        text += f" [{_min_d_text(low)}, {_min_d_text(high)}]"
    if any(m.inconclusive for m in per_seed.values()):
        text += " †"
    if show_lr:
        text += " · lr " + ", ".join(f"{lr:g}" for lr in sorted({m.lr for m in per_seed.values() if m.lr}))
    reasons = collections.Counter(m.stop_reason for m in per_seed.values() if m.stop_reason)
    if reasons:
        text += " · " + (next(iter(reasons)) if len(reasons) == 1 else
                         ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items())))  # fmt: skip
    return text


def min_d_spread(rows: Sequence[dict], threshold: float = THRESHOLD,
                 metric: str = "accuracy") -> dict[tuple[str, str], dict[int, tuple[int, int]]]:  # fmt: skip
    """(task, series) -> {L: (smallest, largest) min D over seeds}, as drawn beside each median."""
    lengths = {(r["task"], r["size"]): r["L"] for r in rows}
    out: dict[tuple[str, str], dict[int, tuple[int, int]]] = {}
    for (task, name, size), per_seed in min_d_by_seed(rows, threshold, metric).items():
        _, low, high = median_point(per_seed)
        out.setdefault((task, name), {})[lengths[(task, size)]] = (low.dim, high.dim)
    return out


def draw_min_d(ax, points: Sequence[tuple[int, int, str]], label: str, marker: str = "o", linestyle: str = "-"):
    """Measured points joined by a line, censored ones as open triangles pointing where the true
    min D lies (▽ at most this D, △ beyond it); the label carries the exponent or why none."""
    measured = [(L, D) for L, D, c in points if not c]
    line = ax.plot(*(zip(*measured) if measured else ([], [])), marker=marker, linestyle=linestyle, ms=4)[0]
    for censored, shape in (("below", "v"), ("above", "^")):
        drawn = [(L, D) for L, D, c in points if c == censored]
        if drawn:
            ax.plot(*zip(*drawn), shape, ms=7, mfc="none", color=line.get_color())
    line.set_label(f"{label}: {exponent_label(measured, short=True)}")


def scaling(rows: Sequence[dict], path: str | Path, threshold: float = THRESHOLD, metric: str = "accuracy") -> Path:
    """Smallest D against L per task and series (`draw_min_d`: censored points as triangles)."""
    plt = pyplot()
    found, spread = min_d_points(rows, threshold, metric), min_d_spread(rows, threshold, metric)
    task_names = sorted({r["task"] for r in rows})
    fig, axes = plt.subplots(1, len(task_names), squeeze=False, figsize=(4 * len(task_names), 3.4))
    for ax, task in zip(axes[0], task_names):
        for model in _series_names(rows):
            if found.get((task, model)):
                draw_min_d(ax, found[(task, model)], model)
                for L, (low, high) in spread.get((task, model), {}).items():
                    if high > low:  # the seeds' range
                        ax.plot([L, L], [low, high], color=ax.lines[-1].get_color(), lw=1, alpha=0.6)
        if found:
            Ls = sorted({r["L"] for r in rows if r["task"] == task})
            D0 = min(d for pts in found.values() for _, d, _ in pts)
            ax.plot(Ls, [D0 * math.sqrt(L / Ls[0]) for L in Ls], "k--", lw=0.8, label="∝ sqrt L")
        ax.set_xscale("log")
        ax.set_yscale("log", base=2)
        ax.set_xlabel("sequence length L (max_len − 1)")
        ax.set_ylabel(f"smallest D with {metric} ≥ {threshold:.0%}")
        ax.set_title(task)
        ax.legend(fontsize=7)
    return save_figure(fig, path)


TABLE2_ROWS = ("standard", "linear", "sparse")  # the paper's rows, always shown


def _table2_series(rows) -> list[str]:
    return list(TABLE2_ROWS) + [name for name in _series_names(rows) if name not in TABLE2_ROWS]


def table2(rows: Sequence[dict], threshold: float = THRESHOLD, task: str = "arithmetic",
           metric: str = "accuracy") -> list[dict]:  # fmt: skip
    """Per (model, size): the smallest D reaching `threshold` (median over seeds), with the paper's GFLOPs (2·N·L at
    the paper's L, ``paper_L``) and our full count (at our L)."""
    out, found = [], min_d_by_seed(rows, threshold, metric)
    for model in _table2_series(rows):
        for size in sorted({r["size"] for r in rows if r["task"] == task}):
            per_seed = found.get((task, model, size))
            median = median_point(per_seed)[0] if per_seed else None
            dim = median.dim if median is not None and median.censoring != "above" else None
            match = [r for r in rows if r["task"] == task and series(r) == model and r["size"] == size
                     and r["dim"] == dim]  # fmt: skip
            first = match[0] if match else {}
            out.append({"model": model, "size": size, "L": first.get("L"), "paper_L": first.get("paper_L"),
                        "dim": dim, "paper_gflops": first.get("paper_gflops"),
                        "forward_gflops": first.get("forward_gflops")})  # fmt: skip
    return out


def table2_markdown(entries: Sequence[dict], threshold: float = THRESHOLD) -> str:
    """Cells "paper GFLOPs (L=paper's) · full GFLOPs (L=ours) · D", – where no D reached the threshold."""
    sizes = sorted({e["size"] for e in entries})
    lengths = {e["size"]: (e["paper_L"], e["L"]) for e in entries if e["L"] is not None}
    head = " | ".join(f"n={s}" + (f" (paper L={lengths[s][0]}, ours {lengths[s][1]})" if s in lengths else "")
                      for s in sizes)  # fmt: skip
    lines = [f"Minimum GFLOPs per sequence of a model reaching {threshold:.0%}: the paper's 2·N·L at the "
             "paper's L, then our full count at our L, then the smallest D that reached it.", "",
             f"| model | {head} |", "|---" * (1 + len(sizes)) + "|"]  # fmt: skip
    for model in dict.fromkeys(e["model"] for e in entries):
        cells = []
        for s in sizes:
            e = next((e for e in entries if e["model"] == model and e["size"] == s), None)
            cells.append("–" if e is None or e["dim"] is None else
                         f"{e['paper_gflops']:.3f} · full {e['forward_gflops']:.3f} · D={e['dim']}")  # fmt: skip
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def calibration(rows: Sequence[dict], path: str | Path, metric: str = "valid_accuracy") -> Path:
    """A calibration's picture (`experiments.calibrate`): one panel per probe (model, D),
    `metric` against the training-set size, one line per (step budget, lr), the mean over
    seeds with bars from the lowest seed to the highest."""
    plt = pyplot()
    probes = sorted({(r["model"], r["dim"]) for r in rows})
    fig, axes = plt.subplots(1, len(probes), squeeze=False, figsize=(3.6 * len(probes), 3.0))
    for ax, (model, dim) in zip(axes[0], probes):
        lines: dict[tuple[int, float], dict[int, list[float]]] = {}
        for r in rows:
            if (r["model"], r["dim"]) == (model, dim):
                lines.setdefault((planned_steps(r), r["lr"]), {}).setdefault(r["train_examples"], []).append(r[metric])
        for (steps, lr), by_n in sorted(lines.items()):
            draw_seed_spread(ax, by_n, f"{steps:,} steps, lr {lr:g}")
        ax.axhline(THRESHOLD, color="grey", lw=0.6, ls=":")
        ax.set_xscale("log", base=2)
        ax.set(title=f"{model}, D = {dim}", xlabel="training examples", ylabel=metric, ylim=(-0.05, 1.05))
        ax.legend(fontsize=6)
    return save_figure(fig, path)
