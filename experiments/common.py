"""The command line shared by the experiment scripts: preset, settings, sharding, outputs.

Every script runs the same way: build the grid from a preset (``--preset``; without a GPU the
default is ``tiny``), change any protocol field with ``--set FIELD=VALUE``, print the estimated
cost, train the cells that have no result (``jaxdp.sweeps``), collect ``results.csv`` for exactly
the cells asked for, and write the script's tables and figures beside it.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path

from experiments import launch
from experiments.presets import PRESETS, Preset
from jaxdp.args import Parser, add_reporting, add_version, int_at_least, number_in, reporting
from jaxdp.cli import run_command
from jaxdp.evaluation.evaluate import METRICS
from jaxdp.models import mixers
from jaxdp.models.config import check_mixer_name
from jaxdp.runtime import files
from jaxdp.runtime.errors import JaxdpError, first_line
from jaxdp.sweeps import collect, costs, grids, runner, search, tables
from jaxdp.sweeps.study import THRESHOLD
from jaxdp.training.pack import AUTO_SIZE, parse_size
from jaxdp.training.protocol import parse_settings, settable

#: report(rows, exp_dir, args, plans, preset) -> the text printed after the accuracy tables
Report = Callable[..., str]


def gpu_present() -> bool:
    import jax

    return jax.default_backend() == "gpu"


def parser(name: str, description: str, tasks: tuple[str, ...], mixer_names: tuple[str, ...]) -> Parser:
    p = Parser(prog=f"python -m experiments.{name}", description=description)
    add_version(p)
    add_grid_arguments(p, name, tasks, mixer_names)
    add_run_arguments(p)
    add_search_arguments(p)
    add_reporting(p)
    launch.add_arguments(p)
    return p


def add_mixer_arguments(p: argparse.ArgumentParser, mixer_names: tuple[str, ...], cpu_mixers: str) -> None:
    """``--mixers`` (and its first name ``--models``) and ``--hybrid``."""
    p.add_argument(
        "--mixers",
        nargs="+",
        default=None,
        type=mixer_name,
        metavar="MIXER",
        help=f"mixers ({', '.join(mixers.available())}) or hybrids: a+b is a stack of a whose last "
        f"layer is b, a,b,c one mixer per layer (default: {' '.join(mixer_names)}, or the preset's own; "
        f"cpu: {cpu_mixers})",
    )
    # the flag's first name, kept for the commands saved beside committed results
    p.add_argument("--models", dest="mixers", nargs="+", type=mixer_name, help=argparse.SUPPRESS)
    p.add_argument(
        "--hybrid",
        default=None,
        choices=mixers.available(),
        metavar="MIXER",
        help="add, for every other model, its stack with the last layer MIXER (e.g. --hybrid standard: "
        "one attention layer in a recurrent stack, Wen et al. 2024)",
    )


def add_grid_arguments(
    p: argparse.ArgumentParser, name: str, tasks: tuple[str, ...], mixer_names: tuple[str, ...]
) -> None:
    """The grid: preset, tasks, mixers, sizes, D, seeds, learning rates, data sizes, protocol fields."""
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help="protocol and grid (default: gpu on a GPU, tiny otherwise)",
    )
    cpu_tasks, cpu_mixers = (
        " ".join(preset_choice(PRESETS["cpu"], field, name, default))
        for field, default in (("tasks", tasks), ("mixers", mixer_names))
    )
    p.add_argument(
        "--tasks", nargs="+", default=None, help=f"default: {' '.join(tasks)}, or the preset's own (cpu: {cpu_tasks})"
    )
    add_mixer_arguments(p, mixer_names, cpu_mixers)
    p.add_argument("--sizes", nargs="+", type=int_at_least(1), default=None, help="override every task's sizes")
    p.add_argument("--dims", nargs="+", type=int_at_least(1), default=None, help="override every task's D grid")
    p.add_argument("--seeds", nargs="+", type=int_at_least(0), default=[0], help="training seeds (default: 0)")
    p.add_argument(
        "--lrs",
        nargs="+",
        type=number_in(0),
        default=None,
        metavar="LR",
        help="learning rates, each its own run; a cell's result is its best by validation score "
        "(default: the preset's per mixer, else the protocol's lr)",
    )
    p.add_argument(
        "--train-examples",
        nargs="+",
        type=int_at_least(1),
        default=None,
        metavar="N",
        help="training-set sizes, each its own series (default: the protocol's train_examples)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help=f"change a protocol field (repeatable): {', '.join(settable())}, <mixer>.<option> or <task>.<option>",
    )


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """How the grid runs and what it writes: checkpoints, shards, folders, dry runs and collecting."""
    p.add_argument(
        "--checkpoint-every",
        type=int_at_least(1),
        default=None,
        metavar="STEPS",
        help="checkpoint interval of every cell (default: the protocol's checkpoint_every, 1000); a "
        "kill -9 loses at most this much, SIGTERM and Ctrl-C nothing",
    )
    p.add_argument("--shard", default=None, metavar="I/N", help="run cells I, I+N, I+2N, … only")
    p.add_argument("--max-cells", type=int_at_least(1), default=None, help="stop after training this many cells")
    p.add_argument(
        "--metric",
        choices=METRICS[:2],
        default="accuracy",
        help="what the heatmaps draw: accuracy (paper: greedy final answer, the default) or "
        "teacher_forced_exact (benchmark)",
    )
    p.add_argument("--out", default="runs", help="results root (default: runs/)")
    p.add_argument("--data-root", default="data", help="datasets root (default: data/)")
    p.add_argument(
        "--compile-cache",
        default=None,
        metavar="DIR",
        help="jax's persistent compilation cache, shared by reruns and shards "
        "(default: <out>/compile-cache; 'none': off)",
    )
    p.add_argument("--dry-run", action="store_true", help="list the cells and the estimated cost, then exit")
    p.add_argument(
        "--collect",
        action="store_true",
        help="train nothing: write results.csv, the tables and figures from the cells that have a result "
        "(a study's partial results while it runs)",
    )
    p.add_argument(
        "--yes",
        action="store_true",
        help="start anyway a GPU-scale preset (gpu, paper) on a CPU, or a grid estimated at days",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_search_arguments(p: argparse.ArgumentParser) -> None:
    """``--search``, ``--search-from``, ``--pack`` and ``--threshold``: how the min D is found."""
    p.add_argument(
        "--search",
        action="store_true",
        help="per (task, size, model, seed), bisect the D grid for the smallest D reaching --threshold "
        "(by validation score), training only the D it visits: about log2(G) + 1 of G",
    )
    p.add_argument(
        "--search-from",
        choices=search.FIRSTS,
        default=None,
        help="where --search starts: the largest D (a column no D reaches costs one probe) or the "
        "middle one (large D, the dearest, only where smaller ones fail) (default: the preset's)",
    )
    p.add_argument(
        "--pack",
        type=pack_size,
        default="auto",
        metavar="auto|off|K",
        help="train K runs of a cell that differ only in seed or lr as one vmapped program (auto: "
        f"{AUTO_SIZE} on a GPU or TPU, off on a CPU, where it gains nothing)",
    )
    p.add_argument(
        "--threshold",
        type=number_in(0, 1),
        default=THRESHOLD,
        help=f"the score a min D must reach, in (0, 1] (default: {THRESHOLD:g}, the paper's 90%%)",
    )


def mixer_name(text: str) -> str:
    """``--mixers``: a registered mixer or a hybrid (`jaxdp.models.config.hybrid_plan`)."""
    try:
        check_mixer_name(text)
    except JaxdpError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def pack_size(text: str) -> str | int:
    """``--pack``: "auto" kept as such (resolved when the sweep starts), else replicas >= 1."""
    if text == "auto":
        return text
    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--pack takes ")) from None


def preset_choice(preset: Preset, field: str, script: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """The tasks or mixers (`field`) `preset` runs in `script`: its own choice, else `default`."""
    return tuple(getattr(preset, field).get(script, default))


def preset_from_args(args) -> Preset:
    preset = PRESETS[args.preset or ("gpu" if gpu_present() else "tiny")]
    settings = parse_settings(args.set)
    if args.checkpoint_every is not None:
        settings["checkpoint_every"] = args.checkpoint_every
    return dataclasses.replace(preset, protocol=preset.protocol.set(**settings))


def grid_from_args(args, preset: Preset) -> list[grids.Cell]:
    unknown = [t for t in args.tasks if t not in preset.sizes]
    if unknown:
        raise JaxdpError(f"--tasks: unknown task {unknown[0]!r}; choose from {', '.join(preset.sizes)}")
    sizes = {t: tuple(args.sizes) if args.sizes else preset.sizes[t] for t in args.tasks}
    dims = {t: tuple(args.dims) if args.dims else preset.dims[t] for t in args.tasks}
    # each mixer's learning rates: --lrs for all, else the preset's own (None: the protocol's)
    lrs = {m: tuple(args.lrs) if args.lrs else preset.lrs.get(m, (None,)) for m in args.mixers}
    cells = grids.grid(
        sizes,
        args.mixers,
        dims,
        args.seeds,
        tuple(dict.fromkeys(sum(lrs.values(), ()))),
        args.train_examples or (None,),
    )
    return [c for c in cells if c.lr in lrs[c.mixer]]


def main(
    name: str,
    description: str,
    tasks: tuple[str, ...],
    mixer_names: tuple[str, ...],
    report: Report,
    argv: list[str] | None = None,
    *,
    exp: str | None = None,
    dry_run: Callable[[list[grids.Plan], Preset], str] | None = None,
    make_cells: Callable[[argparse.Namespace, Preset], list[grids.Cell]] = grid_from_args,
) -> int:
    """Parse, check, estimate, run the sweep (skipping finished cells), collect results.csv,
    then `report`. Results go to ``<out>/<exp or name>/<preset>/``. Exit 2 on bad input (one
    line, nothing built), 1 if some cells failed, 130/143 when interrupted."""
    args = parser(name, description, tasks, mixer_names).parse_args(argv)
    return run_command(lambda: _sweep(name, args, report, exp, dry_run, make_cells, tasks, mixer_names))


def resolve(
    name: str,
    args,
    tasks: tuple[str, ...],
    mixer_names: tuple[str, ...],
    make_cells: Callable[[argparse.Namespace, Preset], list[grids.Cell]] = grid_from_args,
) -> tuple[Preset, list[grids.Cell]]:
    """The preset and the cells (this shard's) that script `name`'s parsed `args` ask for;
    `--tasks`/`--mixers` left out take the preset's own choice for `name`, else `tasks`/`mixer_names`."""
    preset = preset_from_args(args)
    args.tasks = args.tasks or list(preset_choice(preset, "tasks", name, tasks))
    args.mixers = args.mixers or list(preset_choice(preset, "mixers", name, mixer_names))
    if getattr(args, "hybrid", None):
        args.mixers += [f"{m}+{args.hybrid}" for m in args.mixers if m != args.hybrid and "+" not in m and "," not in m]
    cells = make_cells(args, preset)
    if args.search:
        search.check(cells)
        return preset, search.shard(cells, args.shard)
    return preset, grids.shard(cells, args.shard)


def _sweep(name, args, report: Report, exp, dry_run, make_cells, tasks, mixer_names) -> tuple[str, int] | None:
    preset, cells = resolve(name, args, tasks, mixer_names, make_cells)
    logging = reporting(args)
    launch.check(args)
    plans = grids.validate(cells, preset.protocol)
    exp_dir = Path(args.out) / (exp or name) / preset.name
    rate = costs.measure_rate(launch.compile_cache(args), keep=False)
    first = args.search_from or preset.search_first
    seconds = print_estimate(name, args, preset, cells, plans, exp_dir, rate, first)
    if args.dry_run:
        lines = [f"{exp_dir / p.path}" + (f"  [{p.cell.variant}]" if p.cell.variant else "") for p in plans]
        lines.append(f"{len(plans)} cells, preset {preset.name}")
        return "\n".join(lines + ([dry_run(plans, preset)] if dry_run else [])), 0
    if args.collect:
        written, failure = _write_results(name, args, report, exp_dir, cells, plans, preset)
        text, code = f"{name}: --collect: nothing trained; results in {written}" if written else "", 0
    else:
        check_cost(preset, args, rate, seconds)
        costs.measure_rate(launch.compile_cache(args))  # kept for the next run, now that this one starts
        outcome = launch.run(
            args, exp_dir, cells, preset.protocol, progress=not args.quiet, reporting=logging, first=first
        )
        written, failure = _write_results(name, args, report, exp_dir, cells, plans, preset)
        text, code = runner.summary(name, outcome, len(cells), written)
    if failure:
        print(f"error: {failure}", file=sys.stderr, flush=True)
        return text, 1
    return text, code


def print_estimate(name: str, args, preset: Preset, cells, plans, exp_dir: Path, rate: dict, first: str) -> float:
    """Print the sweep's estimated cost (of what is still to train: a finished cell, or under
    `--search` from `first` a finished probe, costs nothing) and return its seconds."""
    if args.search:
        whole = search.left_to_train(None, plans, preset.protocol, first, args.threshold)
        left = search.left_to_train(exp_dir, plans, preset.protocol, first, args.threshold)
        columns = len(search.columns(cells))
        grid = f"{len(plans)} cells ({columns} column{'s' if columns != 1 else ''})"
        head = f"--search from the {first} D trains at most {len(whole)} of these {grid}"
        head += f", at most {len(left)} still to train; " if len(left) < len(whole) else "; "
    else:
        left = [p for p in plans if not (exp_dir / p.path / "result.json").exists()]
        head = f"{len(plans) - len(left)} of {len(plans)} cells finished; " if len(left) < len(plans) else ""
    numbers = costs.estimate(left, preset.protocol, rate)
    print(f"{name}, preset {preset.name}: {head}{costs.describe_estimate(numbers, rate, len(left))}", flush=True)
    return numbers["seconds"]


#: a grid estimated to take longer than this on this machine starts only with --yes
LONG_GRID_SECONDS = 48 * 3600


def check_cost(preset: Preset, args, rate: dict, seconds: float) -> None:
    """Refuse, unless --yes, a GPU-scale preset on a CPU or any grid of days on this machine."""
    if args.yes:
        return
    if preset.gpu_scale and rate["backend"] != "gpu":
        raise JaxdpError(
            f"--preset {preset.name} is a GPU-scale protocol and this machine has no GPU; "
            "pass --yes to start it anyway, or use --preset tiny"
        )
    if seconds > LONG_GRID_SECONDS:
        raise JaxdpError(
            f"this grid is estimated at {seconds / 86400:.0f} days on this {rate['backend']}; pass --yes "
            "to start it anyway, or shrink it (--sizes, --dims, --mixers, --shard, --set epochs=...)"
        )


def _write_results(name, args, report: Report, exp_dir: Path, cells, plans, preset) -> tuple[Path | None, str | None]:
    """Collect results.csv and write the tables and figures of the finished cells. Returns the
    results.csv written (None when no cell has a result) and, if this step failed, why: a
    failure here is the report's own (exit 1), never a refusal of the input."""
    step, written = "collecting the results", None
    try:
        rows = collect.collect(exp_dir, cells, preset.protocol)
        if not rows:
            print(f"{name}: no cell of this grid has a result yet: no results.csv, tables or figures written")
            return None, None
        step = "writing results.csv"
        written = collect.write_csv(rows, exp_dir / "results.csv")
        step = "writing the tables"
        for metric in METRICS[:2]:
            print(tables.accuracy_table(rows, metric) + "\n")
        min_d = tables.min_d_table(rows, threshold=args.threshold, metric=args.metric)
        files.write_text(exp_dir / "min_d.md", min_d + "\n")
        print(f"{min_d}\n\n(written to {exp_dir / 'min_d.md'})\n")
        if args.search:
            for line in search.violations(rows, args.threshold):
                print(f"warning: {line}", file=sys.stderr)
        step = f"drawing {name}'s figures"
        print(report(rows, exp_dir, args, plans, preset))
    except Exception as e:  # noqa: BLE001 (KeyboardInterrupt is not an Exception: it still stops)
        return written, f"{step} failed ({type(e).__name__}: {first_line(e, limit=None) or 'no message'})"
    return written, None
