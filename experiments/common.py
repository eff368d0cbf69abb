"""The command line shared by the experiment scripts: preset, settings, sharding, outputs.

Every script runs the same way: build the grid from a preset (``--preset``; without a GPU the
default is ``tiny``), change any protocol field with ``--set FIELD=VALUE``, print the estimated
cost, train the cells that have no result (``jaxdp.sweep``), collect ``results.csv`` for exactly
the cells asked for, and write the script's tables and figures beside it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from experiments.presets import PRESETS, Preset
from jaxdp import sweep
from jaxdp.cli import Parser, int_at_least, run_command
from jaxdp.errors import JaxdpError
from jaxdp.evaluate import METRICS
from jaxdp.models import mixers
from jaxdp.protocol import parse_settings, settable

#: report(rows, exp_dir, args, plans, preset) -> the text printed after the accuracy tables
Report = Callable[..., str]


def gpu_present() -> bool:
    import jax

    return jax.default_backend() == "gpu"


def parser(name: str, description: str, tasks: tuple[str, ...], models: tuple[str, ...]) -> Parser:
    p = Parser(prog=f"python -m experiments.{name}", description=description)
    p.add_argument("--preset", choices=sorted(PRESETS), default=None,
                   help="protocol and grid (default: quick on a GPU, tiny otherwise)")  # fmt: skip
    p.add_argument("--tasks", nargs="+", default=list(tasks), help=f"default: {' '.join(tasks)}")
    p.add_argument("--models", nargs="+", default=list(models), choices=mixers.available(),
                   help=f"mixers (default: {' '.join(models)})")
    p.add_argument("--sizes", nargs="+", type=int_at_least(1), default=None, help="override every task's sizes")
    p.add_argument("--dims", nargs="+", type=int_at_least(1), default=None, help="override every task's D grid")
    p.add_argument("--seeds", nargs="+", type=int_at_least(0), default=[0], help="training seeds (default: 0)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help=f"change a protocol field (repeatable): {', '.join(settable())}, <mixer>.<option> or "
                        "<task>.<option>")  # fmt: skip
    p.add_argument("--checkpoint-every", type=int_at_least(1), default=None, metavar="STEPS",
                   help="checkpoint interval of every cell (default: the protocol's checkpoint_every, 1000); a "
                        "kill -9 loses at most this much, SIGTERM and Ctrl-C nothing")  # fmt: skip
    p.add_argument("--shard", default=None, metavar="I/N", help="run cells I, I+N, I+2N, … only")
    p.add_argument("--max-cells", type=int_at_least(0), default=None, help="stop after training this many cells")
    p.add_argument("--metric", choices=METRICS[:2], default="accuracy",
                   help="what the heatmaps draw: accuracy (paper: greedy final answer, the default) or "
                        "teacher_forced_exact (benchmark)")  # fmt: skip
    p.add_argument("--out", default="runs", help="results root (default: runs/)")
    p.add_argument("--data-root", default="data", help="datasets root (default: data/)")
    p.add_argument("--dry-run", action="store_true", help="list the cells and the estimated cost, then exit")
    p.add_argument("--yes", action="store_true", help="start a GPU-scale preset (quick, paper) on a CPU anyway")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def preset_from_args(args) -> Preset:
    preset = PRESETS[args.preset or ("quick" if gpu_present() else "tiny")]
    settings = parse_settings(args.set)
    if args.checkpoint_every is not None:
        settings["checkpoint_every"] = args.checkpoint_every
    protocol = preset.protocol.set(**settings)
    return Preset(preset.name, protocol, preset.sizes, preset.dims, preset.gpu_scale)


def grid_from_args(args, preset: Preset) -> list[sweep.Cell]:
    unknown = [t for t in args.tasks if t not in preset.sizes]
    if unknown:
        raise JaxdpError(f"--tasks: unknown task {unknown[0]!r}; choose from {', '.join(preset.sizes)}")
    sizes = {t: tuple(args.sizes) if args.sizes else preset.sizes[t] for t in args.tasks}
    dims = {t: tuple(args.dims) if args.dims else preset.dims[t] for t in args.tasks}
    return sweep.grid(sizes, args.models, dims, args.seeds)


def main(name: str, description: str, tasks: tuple[str, ...], models: tuple[str, ...], report: Report,
         argv: list[str] | None = None, *, exp: str | None = None,
         dry_run: Callable[[list[sweep.Plan], Preset], str] | None = None,
         make_cells: Callable[[argparse.Namespace, Preset], list[sweep.Cell]] = grid_from_args) -> int:  # fmt: skip
    """Parse, check, estimate, run the sweep (skipping finished cells), collect results.csv,
    then `report`. Results go to ``<out>/<exp or name>/<preset>/``. Exit 2 on bad input (one
    line, nothing built), 1 if some cells failed, 130/143 when interrupted."""
    args = parser(name, description, tasks, models).parse_args(argv)
    return run_command(lambda: _sweep(name, args, report, exp, dry_run, make_cells))


def _sweep(name, args, report: Report, exp, dry_run, make_cells) -> tuple[str, int] | None:
    preset = preset_from_args(args)
    cells = sweep.shard(make_cells(args, preset), args.shard)
    plans = sweep.validate(cells, preset.protocol)
    exp_dir = Path(args.out) / (exp or name) / preset.name
    rate = sweep.measure_rate()
    cost = sweep.describe_estimate(sweep.estimate(plans, preset.protocol, rate), rate, len(plans))
    print(f"{name}, preset {preset.name}: {cost}", flush=True)
    if args.dry_run:
        lines = [f"{exp_dir / p.path}" + (f"  [{p.cell.variant}]" if p.cell.variant else "") for p in plans]
        lines.append(f"{len(plans)} cells, preset {preset.name}")
        return "\n".join(lines + ([dry_run(plans, preset)] if dry_run else [])), 0
    if preset.gpu_scale and rate["backend"] != "gpu" and not args.yes:
        raise JaxdpError(f"--preset {preset.name} is a GPU-scale protocol and this machine has no GPU; "
                         "pass --yes to start it anyway, or use --preset tiny")  # fmt: skip
    outcome = sweep.run(exp_dir, cells, preset.protocol, data_root=args.data_root, progress=not args.quiet,
                        max_cells=args.max_cells)  # fmt: skip
    rows = sweep.collect(exp_dir, cells, preset.protocol)
    sweep.write_csv(rows, exp_dir / "results.csv")
    for metric in METRICS[:2]:
        print(sweep.accuracy_table(rows, metric) + "\n")
    print(report(rows, exp_dir, args, plans, preset))
    return sweep.summary(name, outcome, len(cells), exp_dir / "results.csv")
