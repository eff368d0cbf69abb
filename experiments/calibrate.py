"""Calibrate the study's protocol on one column before its grid: learning rate, steps and data.

    python -m experiments.calibrate --out ~/jaxdp-runs --dry-run        # the cells and their cost
    python -m experiments.calibrate --out ~/jaxdp-runs --shard 0/2      # one of two workers (one per core)
    python -m experiments.calibrate --out ~/jaxdp-runs                  # trains what is missing, then reports
    python -m experiments.calibrate --out ~/jaxdp-runs --report         # reports the finished cells only

Each *probe* is a model at one D near its smallest (``--probes standard:16 linear:32``), trained
on LIS(``--size``) at every learning rate (``--lrs``), training-set size (``--train-examples``)
and step budget (``--steps``) asked for, under `experiments.presets.study_protocol`: a fixed
number of steps at batch 64, so a larger training set is seen for fewer epochs, and the
validation stopping rule. The report lists each run's validation and test accuracy, its last
training loss, the steps it ran and why it stopped, so one reads where more steps or more data
stop moving the validation score. Cells are those of the experiment scripts (`jaxdp.sweeps`):
finished ones are skipped, a cut one resumes from its checkpoint.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

from experiments.presets import STUDY_STEPS, study_protocol
from jaxdp.args import Parser, add_version, int_at_least, number_in
from jaxdp.cli import run_command
from jaxdp.models import mixers
from jaxdp.runtime import files
from jaxdp.runtime.devices import use_cpu_cores_for_command
from jaxdp.runtime.errors import JaxdpError
from jaxdp.sweeps import collect, costs, figures, grids, runner
from jaxdp.sweeps.study import planned_steps

DEFAULT_PROBES = ("standard:16", "linear:32", "sparse:64")


def probe(text: str) -> tuple[str, int]:
    """``--probes``: MODEL:D, a registered mixer and a hidden size >= 4."""
    model, _, dim = text.partition(":")
    if model not in mixers.available() or not dim.isdigit() or int(dim) < 4:
        raise argparse.ArgumentTypeError(
            f"expected MODEL:D with MODEL one of {', '.join(mixers.available())} and D an integer >= 4, got {text!r}"
        )
    return model, int(dim)


def parser() -> Parser:
    p = Parser(prog="python -m experiments.calibrate", description=__doc__)
    add_version(p)
    p.add_argument("--size", type=int_at_least(3), default=17, help="LIS size N (default: 17, L = 37)")
    p.add_argument(
        "--probes",
        nargs="+",
        type=probe,
        default=[probe(t) for t in DEFAULT_PROBES],
        metavar="MODEL:D",
        help=f"models at one D each (default: {' '.join(DEFAULT_PROBES)})",
    )
    p.add_argument(
        "--lrs",
        nargs="+",
        type=number_in(0),
        default=[1e-3, 3e-3],
        metavar="LR",
        help="learning rates (default: 1e-3 3e-3)",
    )
    p.add_argument(
        "--train-examples",
        nargs="+",
        type=int_at_least(1),
        default=[16_000, 64_000, 256_000],
        metavar="N",
        help="training-set sizes (default: 16000 64000 256000)",
    )
    p.add_argument(
        "--steps",
        nargs="+",
        type=int_at_least(1),
        default=[STUDY_STEPS],
        help=f"step budgets at batch 64 (default: {STUDY_STEPS})",
    )
    p.add_argument("--seeds", nargs="+", type=int_at_least(0), default=[0], help="training seeds (default: 0)")
    p.add_argument("--shard", default=None, metavar="I/N", help="train cells I, I+N, … only (then report all)")
    p.add_argument("--out", default="runs", help="results root: <out>/calibrate/ (default: runs/)")
    p.add_argument("--data-root", default="data", help="datasets root (default: data/)")
    p.add_argument("--dry-run", action="store_true", help="list the cells and the estimated cost, then exit")
    p.add_argument(
        "--report", action="store_true", help="train nothing: report the cells of this grid that have a result"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def parts(args) -> list[tuple[object, list[grids.Cell]]]:
    """(protocol, cells) per (training-set size, step budget): every probe, lr and seed."""
    out = []
    for examples, steps in itertools.product(args.train_examples, args.steps):
        try:
            protocol = study_protocol(examples, steps)
        except ValueError as e:
            raise JaxdpError(f"--train-examples/--steps: {e}") from None
        cells = [
            grids.Cell("lis", args.size, model, dim, seed, lr=lr)
            for (model, dim), lr, seed in itertools.product(args.probes, args.lrs, args.seeds)
        ]
        grids.validate(cells, protocol)
        out.append((protocol, cells))
    return out


def report(rows: list[dict]) -> str:
    """One line per run, grouped by probe: how the validation score moves with data and steps."""
    head = (
        "| mixer | D | train examples | steps asked | lr | seed | valid acc | test acc | final loss | "
        "steps run | stop |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    key = lambda r: (r["mixer"], r["dim"], planned_steps(r), r["train_examples"], r["lr"], r["seed"])  # noqa: E731
    for r in sorted(rows, key=key):
        lines.append(
            f"| {r['mixer']} | {r['dim']} | {r['train_examples']:,} | {planned_steps(r):,} "
            f"| {r['lr']:g} | {r['seed']} | "
            f"{r['valid_accuracy']:.3f} | {r['accuracy']:.3f} | {r['final_loss']:.4f} | {r['steps']:,} | "
            f"{r['stop_reason']} |"
        )
    return "\n".join(lines)


def _calibrate(args) -> tuple[str, int]:
    plan = parts(args)
    exp_dir = Path(args.out) / "calibrate"
    rate = costs.measure_rate(Path(args.out) / "compile-cache", keep=False)
    total = sum(costs.estimate(grids.validate(c, p), p, rate)["seconds"] for p, c in plan)
    cells = sum(len(c) for _, c in plan)
    print(
        f"calibrate: {cells} cells, at most {total / 3600:.1f} h on this {rate['backend']} without early stops "
        f"(split --shard i/n over n processes)",
        flush=True,
    )
    if args.dry_run:
        return "\n".join(f"{exp_dir / grids.plan(c, p).path}  {c.label}" for p, cs in plan for c in cs), 0
    failed = 0
    for protocol, part in [] if args.report else plan:
        outcome = runner.run(
            exp_dir,
            grids.shard(part, args.shard),
            protocol,
            data_root=args.data_root,
            progress=not args.quiet,
            compile_cache=Path(args.out) / "compile-cache",
        )
        failed += len(outcome["failed"])
    rows = [row for protocol, part in plan for row in collect.collect(exp_dir, part, protocol)]
    if rows:
        collect.write_csv(rows, exp_dir / "results.csv")
        table = report(rows)
        files.write_text(exp_dir / "calibration.md", table + "\n")
        figures.calibration(rows, exp_dir / "calibration.png")
        print(table + f"\n\n(written to {exp_dir / 'calibration.md'}, results.csv, calibration.png)")
    missing = cells - len(rows)
    return f"calibrate: {len(rows)} of {cells} cells have a result" + (f", {missing} to go" if missing else ""), int(
        failed > 0
    )


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    return run_command(lambda: _calibrate(args))


if __name__ == "__main__":
    use_cpu_cores_for_command("python -m experiments.calibrate")
    sys.exit(main())
