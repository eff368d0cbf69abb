"""The precision study: every lemma's largest error in float64, float32 and bfloat16 as its
problem size grows, and the smallest float format that still meets ε.

    python -m constructions.report                  # the table, and runs/constructions/precision.png
    python -m constructions.report --json           # one JSON object per measurement
    python -m constructions.report --checks agg,copy_sparse --quick

The paper's constructions assume log-precision: O(log L)-bit numbers. Here you can see what that
costs — which lemmas stay within ε in float32 as the size grows, and where even float64 runs out.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import jax

from constructions.checks import CHECKS, Measurement
from jaxdp.args import Parser

DTYPES = ("float64", "float32", "bfloat16")


def run(names: Sequence[str], quick: bool = False, progress: bool = True) -> list[Measurement]:
    """Measure every (check, size, dtype); `quick` keeps the two smallest sizes."""
    from tqdm import tqdm

    jobs = [(CHECKS[n], size, dt) for n in names for size in CHECKS[n].sizes[: 2 if quick else None] for dt in DTYPES]
    out = []
    with jax.enable_x64(True):
        for check, size, dtype in tqdm(jobs, desc="precision", disable=not progress, file=sys.stderr):
            out.append(check.measure(size, dtype=dtype))
    return out


def smallest_format(rows: Sequence[Measurement]) -> str:
    """The narrowest dtype (bfloat16 < float32 < float64) that met ε, or "—"."""
    ok = {m.dtype for m in rows if m.ok}
    return next((dt for dt in reversed(DTYPES) if dt in ok), "—")


def table(measurements: Sequence[Measurement]) -> str:
    """Markdown: one row per (check, size), the error per dtype, the smallest format meeting ε."""
    lines = [
        "| lemma | check | size | ε | float64 | float32 | bfloat16 | smallest format |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    keys = dict.fromkeys((m.name, m.size) for m in measurements)
    for name, size in keys:
        rows = [m for m in measurements if (m.name, m.size) == (name, size)]
        err = {m.dtype: f"{m.max_error:.1e}" + ("" if m.ok else " ✗") for m in rows}
        lines.append(
            f"| {rows[0].lemma} | {name} | {size:g} | {rows[0].eps:.0e} | "
            + " | ".join(err.get(dt, "") for dt in DTYPES)
            + f" | {smallest_format(rows)} |"
        )
    return "\n".join(lines)


def plot(measurements: Sequence[Measurement], path: str | Path) -> Path:
    """One panel per check: largest error against size per dtype (log-log), ε dashed."""
    from jaxdp.sweeps.figures import pyplot, save_figure

    plt = pyplot()
    from matplotlib.ticker import MaxNLocator, NullFormatter

    names = list(dict.fromkeys(m.name for m in measurements))
    cols = min(4, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, squeeze=False, figsize=(3.3 * cols, 2.7 * rows))
    floor = 1e-17  # exact zeros drawn at the bottom of the log axis
    for ax, name in zip(axes.flat, names):
        ms = [m for m in measurements if m.name == name]
        for dtype, marker in zip(DTYPES, "os^"):
            pts = sorted((m.size, max(m.max_error, floor)) for m in ms if m.dtype == dtype)
            ax.plot(*zip(*pts), marker=marker, label=dtype)
        ax.axhline(ms[0].eps, color="k", ls="--", lw=1, label="ε (the lemma's promise)")
        ax.set(xscale="log", yscale="log", title=f"{ms[0].lemma} {name}", xlabel=CHECKS[name].size_label)
        ax.xaxis.set_minor_formatter(NullFormatter())
        if all(float(m.size).is_integer() for m in ms) and max(m.size for m in ms) < 10:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no half ticks on a small integer axis
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    axes[0][0].set_ylabel("largest |error|")
    axes[0][0].legend(fontsize=7)
    return save_figure(fig, path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(prog="python -m constructions.report", description=__doc__.split("\n")[0])
    parser.add_argument("--checks", default=",".join(CHECKS), help=f"comma-separated subset of: {', '.join(CHECKS)}")
    parser.add_argument("--quick", action="store_true", help="only the two smallest sizes per check")
    parser.add_argument("--json", action="store_true", help="print one JSON object per measurement")
    parser.add_argument(
        "--out",
        default="runs/constructions/precision.png",
        help="where to draw the plot (default runs/constructions/precision.png; the README's "
        "docs/precision.png is drawn with --out docs/precision.png)",
    )
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.checks.split(",") if n.strip()]
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        parser.error(f"--checks: unknown {', '.join(unknown)}; choose from {', '.join(CHECKS)}")
    measurements = run(names, args.quick, progress=not args.json)
    if args.json:
        for m in measurements:
            print(json.dumps(m.to_dict()))
    else:
        print(table(measurements))
    if not args.no_plot:
        path = plot(measurements, args.out)
        print(f"plot: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
