"""The command line shared by the experiment scripts: preset, overrides, sharding, outputs."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Callable

from experiments.presets import PRESETS, Preset
from jaxdp import sweep
from jaxdp.models.config import ATTENTIONS
from jaxdp.train import TrainConfig

SETTABLE = ("train_examples", "test_examples", "epochs", "batch_size", "lr", "warmup_epochs", "eval_examples",
            "dropout", "num_layers", "num_heads", "data_seed")  # fmt: skip


def parser(description: str, tasks: tuple[str, ...], models: tuple[str, ...]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    p.add_argument("--tasks", nargs="+", default=list(tasks), help=f"default: {' '.join(tasks)}")
    p.add_argument("--models", nargs="+", default=list(models), choices=ATTENTIONS)
    p.add_argument("--sizes", nargs="+", type=int, default=None, help="override every task's sizes")
    p.add_argument("--dims", nargs="+", type=int, default=None, help="override every task's D grid")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help=f"override a preset field: {', '.join(SETTABLE)}")  # fmt: skip
    p.add_argument("--shard", default=None, metavar="I/N", help="run cells I, I+N, I+2N, … only")
    p.add_argument("--max-cells", type=int, default=None, help="stop after training this many cells")
    p.add_argument("--out", default="runs", help="results root (default runs/)")
    p.add_argument("--data-root", default="data")
    p.add_argument("--dry-run", action="store_true", help="list the cells and exit")
    p.add_argument("--quiet", action="store_true")
    return p


def preset_from_args(args) -> Preset:
    preset = PRESETS[args.preset]
    changes = {}
    for item in args.set:
        field, _, value = item.partition("=")
        if field not in SETTABLE or not value:
            raise ValueError(f"--set {item!r}: use FIELD=VALUE with FIELD one of {', '.join(SETTABLE)}")
        current = getattr(preset, field)
        if value == "none" and field == "eval_examples":
            changes[field] = None
        else:
            kind = float if isinstance(current, float) else int
            try:
                changes[field] = kind(value)
            except ValueError:
                raise ValueError(f"--set {field}: {value!r} is not a {kind.__name__}") from None
    return dataclasses.replace(preset, **changes)


def cells_and_protocol(args, preset: Preset) -> tuple[list[sweep.Cell], sweep.Protocol]:
    unknown = [t for t in args.tasks if t not in preset.sizes]
    if unknown:
        raise ValueError(f"--tasks: unknown task {unknown[0]!r}; choose from {', '.join(preset.sizes)}")
    sizes = {t: tuple(args.sizes) if args.sizes else preset.sizes[t] for t in args.tasks}
    dims = {t: tuple(args.dims) if args.dims else preset.dims[t] for t in args.tasks}
    cells = sweep.shard(sweep.grid(sizes, args.models, dims, args.seeds), args.shard)
    train = TrainConfig(epochs=preset.epochs, batch_size=preset.batch_size, lr=preset.lr,
                        warmup_epochs=min(preset.warmup_epochs, preset.epochs), eval_examples=preset.eval_examples)  # fmt: skip
    protocol = sweep.Protocol(train_examples=preset.train_examples, test_examples=preset.test_examples, train=train,
                              data_seed=preset.data_seed, num_layers=preset.num_layers, num_heads=preset.num_heads,
                              dropout=preset.dropout, task_options=preset.task_options)  # fmt: skip
    return cells, protocol


def main(name: str, description: str, tasks: tuple[str, ...], models: tuple[str, ...],
         report: Callable[[list[dict], Path], str], argv: list[str] | None = None,
         exp: str | None = None, dry_run: Callable[[object, Preset], str] | None = None) -> int:  # fmt: skip
    """Parse, run the sweep (skipping finished cells), collect results.csv, then `report`.
    Results go to ``<out>/<exp or name>/<preset>/``."""
    args = parser(description, tasks, models).parse_args(argv)
    try:
        preset = preset_from_args(args)
        cells, protocol = cells_and_protocol(args, preset)
        sweep.validate(cells, protocol)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    exp_dir = Path(args.out) / (exp or name) / preset.name
    if args.dry_run:
        for cell in cells:
            print(exp_dir / cell.path)
        print(f"{len(cells)} cells, preset {preset.name}")
        if dry_run is not None:
            print(dry_run(args, preset))
        return 0
    outcome = sweep.run(exp_dir, cells, protocol, data_root=args.data_root, progress=not args.quiet,
                        max_cells=args.max_cells)  # fmt: skip
    rows = sweep.collect(exp_dir)
    sweep.write_csv(rows, exp_dir / "results.csv")
    print(sweep.accuracy_table(rows))
    print(report(rows, exp_dir))
    missing = len(cells) - len(outcome["ran"]) - len(outcome["skipped"])
    print(f"{name}: {len(outcome['ran'])} cells trained, {len(outcome['skipped'])} already done"
          + (f", {missing} left (rerun to continue)" if missing else "") + f"; results in {exp_dir / 'results.csv'}")
    return 0
