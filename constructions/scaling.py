"""Theory and practice side by side: the hidden size D each compiler needs for ED(n, n), the
pigeonhole lower bounds, and — when a scaling/fig1 run's results are present — the smallest D
that trained models needed, on one log-log plot with fitted exponents.

    python -m constructions.scaling                      # table + docs/scaling.png
    python -m constructions.scaling --results runs/fig1/quick/results.csv --out scaling.png

Exponents are fitted over L ≥ `--fit-from` (default 1000), where the √L term of the sparse and
linear constructions dominates their constant part (scratch space, state, flags).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from constructions import bounds
from constructions.compile import COMPILERS, dims, period
from constructions.dp import edit_distance
from jaxdp import plots
from jaxdp.cli import Parser
from jaxdp.models import ModelConfig, mixers

LABELS = {"standard": "standard (Thm 4.1)", "local": "sparse, B = m, ED_local (Prop 5.4)",
          "sparse": "sparse, B ≈ √L (Thm B.4)", "linear": "linear (Thm B.3)"}  # fmt: skip
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
        for c in COMPILERS:
            s = local if c == "local" else spec
            row[c], row[f"{c}_period"] = dims(s, c), period(s, c)
        row["B.5"] = bounds.b5_linear(L, DEPTH, HEADS, bits)
        row["B.6"] = bounds.b6_sparse(L, spec.prompt_len, period(spec, "sparse"), DEPTH, bits)
        row["C.4"] = bounds.c4_local_linear(local.m, DEPTH, HEADS, bits)
        row["ED family"] = bounds.min_dim_linear(bounds.ed_family_bits(n, n), DEPTH, HEADS, bits)
        for name in mixers.available():  # every registered mixer's state count, the family of B.5
            row[f"state: {name}"] = bounds.min_dim_state(name, L, spec.prompt_len, L, DEPTH, HEADS, bits)
        row["window reach"] = bounds.window_reach(DEPTH, ModelConfig(attention="window", max_len=L, vocab_size=2).window)
        out.append(row)
    return out


def state_series() -> list[str]:
    return [f"state: {name}" for name in mixers.available()]


SERIES = list(COMPILERS) + ["B.5", "B.6", "C.4", "ED family"]


def fits(table: list[dict], fit_from: int) -> dict[str, tuple[float, float]]:
    big = [r for r in table if r["L"] >= fit_from] or table
    return {k: plots.fit_exponent([r["L"] for r in big], [r[k] for r in big]) for k in SERIES + state_series()}


PRESETS_FIRST = ("paper", "quick", "tiny")  # the fig1 sweep's results, most complete protocol first


def find_results(*roots: Path) -> Path | None:
    """The first ``runs/fig1/<preset>/results.csv`` (paper, quick, tiny) under `roots` (default:
    the working directory), or None."""
    for root in roots or (Path.cwd(),):
        for preset in PRESETS_FIRST:
            path = Path(root) / "runs" / "fig1" / preset / "results.csv"
            if path.exists():
                return path
    return None


def empirical(results: Path | None, task: str = "ed") -> dict[str, list[tuple[int, int]]]:
    """"<model> on <task>" -> [(L, smallest D reaching the threshold)] from a sweep's results.csv.
    The constructions drawn beside them are ED's; B.5 and B.6 hold for any DP with 2^Θ(L) inputs."""
    if results is None or not Path(results).exists():
        return {}
    from jaxdp import sweep

    found = plots.min_dims(sweep.read_csv(results))
    return {f"{model} on {name}": pts for (name, model), pts in found.items() if name == task and pts}


def table_text(table: list[dict], fitted: dict) -> str:
    """The compilers' D and the paper's bounds; then every mixer's state-count bound, with the
    window model's reach M·(w − 1) beside ED's length."""
    out = []
    for series, extra in ((SERIES, []), (state_series(), ["window reach"])):
        lines = ["| n | L | " + " | ".join(series + extra) + " |", "|" + "---|" * (len(series) + len(extra) + 2)]
        for r in table:
            lines.append(f"| {r['n']} | {r['L']} | " + " | ".join(str(r[k]) for k in series + extra) + " |")
        lines.append("| fitted exponent | | " + " | ".join(f"{fitted[k][0]:.2f}" for k in series) + " |" * (1 + len(extra)))
        out.append("\n".join(lines))
    return "\n\n".join(out)


def plot(table: list[dict], fitted: dict, found: dict, path: Path) -> Path:
    """Left: the constructions, the paper's bounds and trained models; right: every registered
    mixer's state-count bound (mixers with the same bound share a line) and the window model's
    reach."""
    plt = plots.pyplot()
    fig, (ax, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    L = [r["L"] for r in table]
    for k in COMPILERS:
        ax.plot(L, [r[k] for r in table], "o-", ms=3, label=f"{LABELS[k]}: {fitted[k][0]:.2f}")
    for k, style in (("B.5", "--"), ("B.6", ":"), ("C.4", "-."), ("ED family", (0, (1, 3)))):
        ax.plot(L, [r[k] for r in table], linestyle=style, color="gray",
                label=f"lower bound {k}: {fitted[k][0]:.2f}")  # fmt: skip
    for name, pts in found.items():
        b, _ = plots.fit_exponent(*zip(*pts)) if len(pts) >= 2 else (math.nan, math.nan)
        ax.plot(*zip(*pts), "s", ms=6, label=f"trained {name} (min D at 90%)" + ("" if math.isnan(b) else f": {b:.2f}"))
    ax.set_title("D needed vs L: constructions for ED(n, n), pigeonhole bounds, training", fontsize=10)
    groups: dict[tuple, list[str]] = {}
    for k in state_series():
        groups.setdefault(tuple(r[k] for r in table), []).append(k.removeprefix("state: "))
    for values, names in groups.items():
        right.plot(L, values, "o-", ms=3, label=f"{', '.join(names)}: {fitted['state: ' + names[0]][0]:.2f}")
    right.plot(L, [r["window reach"] for r in table], "k:", label="window: reach M·(w−1), tokens")
    right.plot(L, L, "k--", lw=0.8, label="ED's dependency length ≈ L")
    right.set_title("every mixer's bound from its decode state after the prompt (2^L inputs)", fontsize=10)
    for a in (ax, right):
        a.set_xscale("log"), a.set_yscale("log")
        a.set_xlabel("sequence length L"), a.set_ylabel("hidden size D (reach: tokens)")
        a.legend(fontsize=7, loc="upper left")
    return plots.save_figure(fig, path)


def main(argv=None) -> int:
    p = Parser(prog="python -m constructions.scaling", description=__doc__)
    p.add_argument("--max-n", type=int, default=400, help="largest ED size n (default 400, L ≈ 161k)")
    p.add_argument("--fit-from", type=int, default=1000, help="fit exponents over L >= this (default 1000)")
    p.add_argument("--results", type=Path, default=None,
                   help="a sweep's results.csv with ED rows (default: runs/fig1/<preset>/results.csv, "
                        "preset paper, quick or tiny, the first present)")
    p.add_argument("--out", type=Path, default=Path("docs/scaling.png"), help="the plot (default docs/scaling.png)")
    p.add_argument("--no-plot", action="store_true")
    args = p.parse_args(argv)
    if args.max_n < 4:
        p.error(f"--max-n must be at least 4, got {args.max_n}")
    table = rows(sizes(args.max_n))
    fitted = fits(table, args.fit_from)
    print(table_text(table, fitted))
    if not args.no_plot:
        results = args.results or find_results()
        print(f"plot: {plot(table, fitted, empirical(results), args.out)}" + (f" (trained: {results})" if results else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
