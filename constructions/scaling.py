"""Theory and practice side by side: the hidden size D each compiler needs for ED(n, n), the
pigeonhole lower bounds, and — when a fig1/fig2 sweep's results are present — the smallest D
that trained models needed, on one log-log plot with fitted exponents.

    python -m constructions.scaling                      # table + runs/constructions/scaling.png
    python -m constructions.scaling --results benchmarks/results/study/fig1/results.csv \
        --out docs/scaling.png   # docs/proofs.md's figure

Exponents are fitted over L ≥ `--fit-from` (default 1000), where the √L term of the sparse and
linear constructions dominates their constant part (scratch space, state, flags).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from constructions import arithmetic_model, bounds
from constructions.compile import COMPILERS, dims, period
from constructions.dp import edit_distance
from jaxdp import tasks
from jaxdp.args import Parser
from jaxdp.models import ModelConfig, mixers
from jaxdp.sweeps import collect, figures, tables

LABELS = {
    "standard": "standard (Thm 4.1)",
    "local": "sparse, B = m, ED_local (Prop 5.4)",
    "sparse": "sparse, B ≈ √L (Thm B.4)",
    "linear": "linear (Thm B.3)",
    "window": "window, w = m, ED_local (as Prop 5.4)",
}
DRAWN = COMPILERS + ("window",)  # the gated and retention compilers have linear's D
DEPTH, HEADS = 3, 4  # the bounds are for the paper's experimental models (M = 3, H = 4)


def sizes(max_n: int = 400, count: int = 14, min_n: int = 4) -> list[int]:
    return sorted({int(round(n)) for n in np.geomspace(min_n, max_n, count)})


def rows(ns: list[int]) -> list[dict]:
    """One row per n: L, each compiler's D and B/W, and the lower bounds at ⌈log₂ L⌉ bits."""
    out = []
    for n in ns:
        spec, local = edit_distance(n, n), edit_distance(n, n, local=True)
        L = spec.length
        bits = math.ceil(math.log2(L))
        row = dict(n=n, L=L, bits=bits)
        for c in DRAWN:
            s = local if c in ("local", "window") else spec
            row[c], row[f"{c}_period"] = dims(s, c), period(s, c)
        row["B.5"] = bounds.b5_linear(L, DEPTH, HEADS, bits)
        row["B.6"] = bounds.b6_sparse(L, spec.prompt_len, period(spec, "sparse"), DEPTH, bits)
        row["C.4"] = bounds.c4_local_linear(local.m, DEPTH, HEADS, bits)
        row["ED family"] = bounds.min_dim_linear(bounds.ed_family_bits(n, n), DEPTH, HEADS, bits)
        for name in mixers.available():  # every registered mixer's state count, the family of B.5
            row[f"state: {name}"] = bounds.min_dim_state(name, L, spec.prompt_len, L, DEPTH, HEADS, bits)
        row["window reach"] = bounds.window_reach(
            DEPTH, ModelConfig(mixer="window", max_len=L, vocab_size=2).options.window
        )
        out.append(row)
    return out


def arithmetic_rows(ns: list[int]) -> list[dict]:
    """Arithmetic(n): L, the D of Proposition 5.1's hand-set model (`constructions.arithmetic_model`,
    the same at every n) and Theorem C.1's lower bound for linear attention at ⌈log₂ L⌉ bits."""
    out = []
    for n in ns:
        L = 2 * n * n + 2 * n + 1  # tasks.get("arithmetic", n).max_len - 1, without building a vocabulary per n
        bits = math.ceil(math.log2(L))
        D = arithmetic_model.layout_for(len(tasks.get("arithmetic", 1).vocab)).dim
        out.append(dict(n=n, L=L, bits=bits, D=D, **{"C.1": bounds.c1_arithmetic_linear(n, DEPTH, HEADS, bits)}))
    return out


def arithmetic_text(table: list[dict]) -> str:
    lines = ["| Arithmetic n | L | D, Prop 5.1 (sparse, B ≈ √L) | C.1 (linear, lower bound) |", "|---|---|---|---|"]
    lines += [f"| {r['n']} | {r['L']} | {r['D']} | {r['C.1']} |" for r in table]
    return "\n".join(lines)


def draw_arithmetic(ax, table: list[dict]) -> None:
    L = [r["L"] for r in table]
    for key, style, label in (("D", "s-", "arithmetic, sparse B ≈ √L (Prop 5.1)"), ("C.1", "--", "lower bound C.1")):
        fit = exponent_text(tables.fit_exponent(L, [r[key] for r in table])[0])
        ax.plot(L, [r[key] for r in table], style, ms=3, color="tab:brown", label=f"{label}: {fit}")


def state_series() -> list[str]:
    return [f"state: {name}" for name in mixers.available()]


SERIES = list(DRAWN) + ["B.5", "B.6", "C.4", "ED family"]


def fits(table: list[dict], fit_from: int) -> dict[str, tuple[float, float]]:
    big = [r for r in table if r["L"] >= fit_from] or table
    return {k: tables.fit_exponent([r["L"] for r in big], [r[k] for r in big]) for k in SERIES + state_series()}


PRESETS_FIRST = ("paper", "gpu", "study", "cpu", "tiny")  # a sweep's results, most complete protocol first


def find_results(*roots: Path, exp: str = "fig1") -> Path | None:
    """The first ``runs/<exp>/<preset>/results.csv`` (preset paper, gpu, study, cpu, tiny) under
    `roots` (default: the working directory), or None."""
    for root in roots or (Path.cwd(),):
        for preset in PRESETS_FIRST:
            path = Path(root) / "runs" / exp / preset / "results.csv"
            if path.exists():
                return path
    return None


def empirical(results: Path | Sequence[Path] | None, task: str | None = "ed") -> dict[str, list[tuple[int, int, str]]]:
    """ "<mixer> on <task>" -> [(L, smallest D reaching the threshold, censoring)] per size
    (`jaxdp.sweeps.tables.min_d_points`) from one or more sweeps' results.csv, for one task (None: every
    task). The constructions drawn beside them are ED's; B.5 and B.6 hold for any DP with
    2^Θ(L) inputs."""
    paths = [results] if isinstance(results, (str, Path)) else list(results or [])
    rows = [row for path in paths if Path(path).exists() for row in collect.read_csv(path)]
    found = tables.min_d_points(rows)
    return {f"{model} on {name}": pts for (name, model), pts in found.items() if task in (None, name) and pts}


def exponent_text(b: float) -> str:
    """A fitted exponent to two decimals, never "-0.00"."""
    return f"{b + 0.0:.2f}".replace("-0.00", "0.00")


def table_text(table: list[dict], fitted: dict) -> str:
    """The compilers' D and the paper's bounds; then every mixer's state-count bound, with the
    window model's reach M·(w − 1) beside ED's length."""
    out = []
    for series, extra in ((SERIES, []), (state_series(), ["window reach"])):
        lines = ["| n | L | " + " | ".join(series + extra) + " |", "|" + "---|" * (len(series) + len(extra) + 2)]
        for r in table:
            lines.append(f"| {r['n']} | {r['L']} | " + " | ".join(str(r[k]) for k in series + extra) + " |")
        lines.append(
            "| fitted exponent | | " + " | ".join(exponent_text(fitted[k][0]) for k in series) + " |" * (1 + len(extra))
        )
        out.append("\n".join(lines))
    return "\n\n".join(out)


def plot(table: list[dict], fitted: dict, found: dict, path: Path, arithmetic: list[dict] = ()) -> Path:
    """Left: the constructions, the paper's bounds and (where `found` has any) trained models;
    right: every registered mixer's state-count bound (mixers with the same bound share a line)
    and the window model's reach. Legends (below each panel) give the fitted exponents."""
    plt = figures.pyplot()
    fig, (ax, right) = plt.subplots(1, 2, figsize=(13, 6.4))
    L = [r["L"] for r in table]
    for k in DRAWN:
        ax.plot(L, [r[k] for r in table], "o-", ms=3, label=f"{LABELS[k]}: {exponent_text(fitted[k][0])}")
    for k, style in (("B.5", "--"), ("B.6", ":"), ("C.4", "-."), ("ED family", (0, (1, 3)))):
        ax.plot(
            L,
            [r[k] for r in table],
            linestyle=style,
            color="gray",
            label=f"lower bound {k}: {exponent_text(fitted[k][0])}",
        )
    draw_arithmetic(ax, list(arithmetic))
    for (name, pts), dodge in zip(found.items(), figures.dodges(len(found))):  # censored: ▽ at most, △ beyond
        figures.draw_min_d(ax, pts, f"trained {name}", marker="s", linestyle="none", dodge=dodge)
    drawn = "ED(n, n) and Arithmetic constructions, pigeonhole bounds" + (
        ",\ntrained min D at 90% (▽ ≤, △ >)" if found else ""
    )
    ax.set_title(f"D needed vs L: {drawn}", fontsize=10)
    groups: dict[tuple, list[str]] = {}
    for k in state_series():
        groups.setdefault(tuple(r[k] for r in table), []).append(k.removeprefix("state: "))
    for values, names in groups.items():
        right.plot(L, values, "o-", ms=3, label=f"{', '.join(names)}: {exponent_text(fitted['state: ' + names[0]][0])}")
    right.plot(L, [r["window reach"] for r in table], "k:", label="window: reach M·(w−1), tokens")
    right.plot(L, L, "k--", lw=0.8, label="ED's dependency length ≈ L")
    right.set_title("every mixer's bound from its decode state after the prompt (2^L inputs)", fontsize=10)
    for a in (ax, right):
        a.set_xscale("log"), a.set_yscale("log")
        a.set_xlabel("sequence length L"), a.set_ylabel("hidden size D (reach: tokens)")
        a.legend(
            fontsize=7,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.14),
            ncol=2,
            title="series: fitted exponent of D in L",
            title_fontsize=7,
        )
    return figures.save_figure(fig, path)


def main(argv=None) -> int:
    p = Parser(prog="python -m constructions.scaling", description=__doc__)
    p.add_argument("--max-n", type=int, default=400, help="largest ED size n (default 400, L ≈ 161k)")
    p.add_argument("--fit-from", type=int, default=1000, help="fit exponents over L >= this (default 1000)")
    p.add_argument(
        "--results",
        type=Path,
        nargs="+",
        default=None,
        help="sweeps' results.csv files whose trained min D to draw, every task (default: "
        "runs/fig1/<preset>/results.csv and runs/fig2/<preset>/results.csv, preset paper, "
        "quick, cpu or tiny, the first present)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("runs/constructions/scaling.png"),
        help="the plot (default runs/constructions/scaling.png; the README's docs/scaling.png "
        "is drawn with --out docs/scaling.png)",
    )
    p.add_argument("--no-plot", action="store_true")
    args = p.parse_args(argv)
    if args.max_n < 4:
        p.error(f"--max-n must be at least 4, got {args.max_n}")
    table = rows(sizes(args.max_n))
    fitted = fits(table, args.fit_from)
    arithmetic = arithmetic_rows(sizes(args.max_n))
    print(table_text(table, fitted) + "\n\n" + arithmetic_text(arithmetic))
    if not args.no_plot:
        results = args.results or [r for r in (find_results(), find_results(exp="fig2")) if r]
        drawn = plot(table, fitted, empirical(results, task=None), args.out, arithmetic)
        print(f"plot: {drawn}" + (f" (trained: {', '.join(map(str, results))})" if results else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
