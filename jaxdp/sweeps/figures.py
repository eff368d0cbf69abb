"""Figures from sweep results (rows as returned by `jaxdp.sweeps.collect.collect`).

Rows are grouped by *series*: the model, and its variant where a sweep names one (Figure 2's
sparse windows). Every function takes the metric to read (`accuracy`, the paper's greedy
final-answer accuracy, by default; `teacher_forced_exact` is the benchmark's), and reads every
run of a study through `jaxdp.sweeps.study.select`: per cell, the learning rate with the best
validation score. Scores drawn are the test set's, over seeds as a mean and a range; the
smallest D is decided on validation scores, per seed, and given as a median and a range.

* `heatmaps`: the paper's Figure 1/2 layout, one panel per (series, task): problem size across,
  hidden size D up, each cell annotated with its score.
* `curves`: the score against D (or another column), one line per series and size.
* `scaling`: the smallest D reaching the threshold against L, log-log, with the fitted exponent
  per series next to the theory's sqrt(L) (`jaxdp.sweeps.tables.fit_exponent`). L is each task's
  longest sequence without <eos> (our max_len − 1). A min D the grid only bounds is drawn as a
  triangle and never fitted.
* `calibration`: a calibration's validation score against training examples, per probe and rate.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jaxdp.runtime import files
from jaxdp.sweeps.study import THRESHOLD, planned_steps, select, series
from jaxdp.sweeps.tables import exponent_label, min_d_points, min_d_spread, series_names


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


def _seed_scores(rows, metric: str = "accuracy", **where) -> dict[tuple[int, int], list[float]]:
    """(size, dim) -> `metric` of each seed's selected run, for rows matching `where`."""
    cells: dict[tuple[int, int], list[float]] = {}
    for r in select(rows):
        if all((series(r) if k == "series" else r[k]) == v for k, v in where.items()) and r.get(metric) is not None:
            cells.setdefault((r["size"], r["dim"]), []).append(r[metric])
    return cells


def heatmaps(rows: Sequence[dict], path: str | Path, title: str = "", metric: str = "accuracy") -> Path:
    """One panel per (series, task); the test set's `metric` in %, darker is better (the min-D
    tables read the validation set: a cell may show 91 where its validation score is 0.899)."""
    plt = pyplot()
    task_names = sorted({r["task"] for r in rows})
    models = series_names(rows)
    wide = len(task_names) == 1  # a single task: the models side by side
    n_rows, n_cols = (1, len(models)) if wide else (len(models), len(task_names))
    fig, axes = plt.subplots(
        n_rows, n_cols, squeeze=False, figsize=(3.2 * n_cols + 1.6, 2.8 * n_rows + 0.6), layout="constrained"
    )
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
                ax.text(
                    x,
                    y,
                    _heat_label(values),
                    ha="center",
                    va="center",
                    fontsize=8 if len(values) == 1 else 6.5,
                    color="white" if grid[y, x] > 60 else "black",
                )
            ax.set_xticks(range(len(sizes)), [f"{s}\nL={lengths[(task, s)]}" for s in sizes])
            ax.set_yticks(range(len(dims)), [str(d) for d in dims])
            ax.set_title(f"{task} · {model}", fontsize=9)
            if wide or i == len(models) - 1:
                ax.set_xlabel("problem size")
            if (i == 0) if wide else (j == 0):
                ax.set_ylabel("hidden size D")
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label=f"test {metric} (%)")
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
            for name in series_names(rows):
                by_x: dict[float, list[float]] = {}
                for r in rows:
                    if (r["task"], r["size"]) == (task, sizes[j]) and series(r) == name and r.get(x) is not None:
                        by_x.setdefault(r[x], []).append(r[metric])
                if by_x:
                    draw_seed_spread(ax, by_x, name)
            ax.set_xscale("log", base=2)
            ax.set(
                title=f"{task}, size {sizes[j]}",
                xlabel="hidden size D" if x == "dim" else "state size (numbers)",
                ylabel=metric,
                ylim=(-0.05, 1.05),
            )
            ax.legend(fontsize=6)
    return save_figure(fig, path)


def draw_min_d(
    ax, points: Sequence[tuple[int, int, str]], label: str, marker: str = "o", linestyle: str = "-", dodge: float = 1.0
):
    """Measured points joined by a line, censored ones as open triangles pointing where the true
    min D lies (▽ at most this D, △ beyond it); the label carries the exponent or why none.
    Drawn at L · `dodge`, so that series on the same points stay apart on a log axis (the
    exponent, a slope in log L, is the same)."""
    measured = [(L, D) for L, D, c in points if not c]
    xs = [L * dodge for L, _ in measured]
    line = ax.plot(xs, [D for _, D in measured], marker=marker, linestyle=linestyle, ms=4)[0]
    for censored, shape in (("below", "v"), ("above", "^")):
        drawn = [(L * dodge, D) for L, D, c in points if c == censored]
        if drawn:
            ax.plot(*zip(*drawn), shape, ms=7, mfc="none", color=line.get_color())
    line.set_label(f"{label}: {exponent_label(measured, short=True)}")


#: how far apart (a factor in L) `scaling` draws the series, so that equal points stay visible
DODGE = 1.04


def dodges(count: int) -> list[float]:
    """The factors in L at which `count` series are drawn: powers of `DODGE` centred on 1."""
    return [DODGE ** (i - (count - 1) / 2) for i in range(count)]


def scaling(rows: Sequence[dict], path: str | Path, threshold: float = THRESHOLD, metric: str = "accuracy") -> Path:
    """Smallest D against L per task and series (`draw_min_d`: censored points as triangles),
    each series drawn a little apart in L (`DODGE`)."""
    plt = pyplot()
    found, spread = min_d_points(rows, threshold, metric), min_d_spread(rows, threshold, metric)
    task_names = sorted({r["task"] for r in rows})
    fig, axes = plt.subplots(1, len(task_names), squeeze=False, figsize=(4 * len(task_names), 3.4))
    for ax, task in zip(axes[0], task_names):
        names = [m for m in series_names(rows) if found.get((task, m))]
        for model, dodge in zip(names, dodges(len(names))):
            draw_min_d(ax, found[(task, model)], model, dodge=dodge)
            for L, (low, high) in spread.get((task, model), {}).items():
                if high > low:  # the seeds' range
                    ax.plot([L * dodge] * 2, [low, high], color=ax.lines[-1].get_color(), lw=1, alpha=0.6)
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


def calibration(rows: Sequence[dict], path: str | Path, metric: str = "valid_accuracy") -> Path:
    """A calibration's picture (`experiments.calibrate`): one panel per probe (model, D),
    `metric` against the training-set size, one line per (step budget, lr), the mean over
    seeds with bars from the lowest seed to the highest."""
    plt = pyplot()
    probes = sorted({(r["mixer"], r["dim"]) for r in rows})
    fig, axes = plt.subplots(1, len(probes), squeeze=False, figsize=(3.6 * len(probes), 3.0))
    for ax, (model, dim) in zip(axes[0], probes):
        lines: dict[tuple[int, float], dict[int, list[float]]] = {}
        for r in rows:
            if (r["mixer"], r["dim"]) == (model, dim):
                lines.setdefault((planned_steps(r), r["lr"]), {}).setdefault(r["train_examples"], []).append(r[metric])
        for (steps, lr), by_n in sorted(lines.items()):
            draw_seed_spread(ax, by_n, f"{steps:,} steps, lr {lr:g}")
        ax.axhline(THRESHOLD, color="grey", lw=0.6, ls=":")
        ax.set_xscale("log", base=2)
        ax.set(title=f"{model}, D = {dim}", xlabel="training examples", ylabel=metric, ylim=(-0.05, 1.05))
        ax.legend(fontsize=6)
    return save_figure(fig, path)
