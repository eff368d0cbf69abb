"""Command line: ``python -m jaxdp {data,show,locality,demo}``; each prints a one-line summary."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from jaxdp import tasks
from jaxdp.tasks.dataset import DatasetError, build_to_dir

DEMO_SIZES = {"arithmetic": 4, "lis": 8, "ed": 4, "ed_local": 4}


def _option(text: str) -> tuple[str, object]:
    """``key=value`` with value read as a bool (true/false), an int, or else a string."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--option takes key=value, got {text!r}")
    key, value = text.split("=", 1)
    if value.lower() in ("true", "false"):
        return key, value.lower() == "true"
    try:
        return key, int(value)
    except ValueError:
        return key, value


def _task_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", required=True, choices=list(tasks.TASKS))
    p.add_argument("--size", required=True, type=int, help="n operators / N numbers / n string length")
    p.add_argument("--option", action="append", type=_option, default=[], metavar="KEY=VALUE",
                   help="a task option, e.g. border=costs or under=false (repeatable)")  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jaxdp", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("data", help="build and save a train/test dataset")
    _task_args(p)
    p.add_argument("--train", type=int, required=True, help="training examples")
    p.add_argument("--test", type=int, required=True, help="test examples")
    p.add_argument("--out", required=True, help="folder for train.npz and test.npz")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=None, help="generator processes (default: all cores for big builds)")
    p.add_argument("--force", action="store_true", help="overwrite a different or corrupt dataset in --out")

    p = sub.add_parser("show", help="print a few examples of a task")
    _task_args(p)
    p.add_argument("--count", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("locality", help="measured locality m of every task at the paper's sizes")
    p.add_argument("--samples", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("demo", help="the README's first command: small datasets, examples, locality")
    p.add_argument("--out", default="data/demo")
    p.add_argument("--seed", type=int, default=0)
    return parser


def _make_task(args) -> tasks.Task:
    return tasks.get(args.task, args.size, **dict(args.option))


def _show(task: tasks.Task, example: tasks.Example) -> None:
    print(f"  prompt: {' '.join(example.prompt)}")
    print(f"  target: {' '.join(example.target)}")
    print(f"  answer: {task.answer(example.target)}")


def cmd_data(args) -> str:
    task = _make_task(args)
    start = time.perf_counter()
    train, test, built = build_to_dir(task, args.out, args.train, args.test, args.seed, args.workers, force=args.force)
    verb = f"built in {time.perf_counter() - start:.1f} s" if built else "already built, loaded and checked"
    longest = max(int(train.length.max(initial=0)), int(test.length.max(initial=0)))
    return f"{task}: {len(train)} train + {len(test)} test examples (longest {longest} of max_len {task.max_len}) in {args.out}, {verb}"


def cmd_show(args) -> str:
    task = _make_task(args)
    rng = np.random.default_rng(args.seed)
    for _ in range(args.count):
        _show(task, task.sample(rng))
    return f"{task}: vocabulary {len(task.vocab)} tokens, max_len {task.max_len}"


def locality_table(samples: int, seed: int) -> str:
    """Markdown table of measured m and L (with <eos>) at the paper's sizes."""
    rows = ["| task | size | max_len L | measured m | m / L |", "|---|---|---|---|---|"]
    for name, sizes in tasks.PAPER_SIZES.items():
        for size in sizes:
            task = tasks.get(name, size)
            rng = np.random.default_rng(seed)
            m = tasks.locality(task, (task.sample(rng) for _ in range(samples)))
            rows.append(f"| {name} | {size} | {task.max_len} | {m} | {m / task.max_len:.2f} |")
    return "\n".join(rows)


def cmd_locality(args) -> str:
    print(locality_table(args.samples, args.seed))
    return f"locality measured on {args.samples} samples per cell (seed {args.seed})"


def cmd_demo(args) -> str:
    for name, size in DEMO_SIZES.items():
        task = tasks.get(name, size)
        train, test, _ = build_to_dir(task, f"{args.out}/{name}-{size}", 2000, 200, args.seed, progress=False)
        print(f"{task}: {len(train)} train / {len(test)} test examples, max_len {task.max_len}")
        _show(task, test.example(0))  # the test split holds full-size examples only
    print("\nMeasured locality m (Definition 5.3) at the paper's sizes:")
    print(locality_table(samples=50, seed=args.seed))
    return f"demo: datasets in {args.out}"


COMMANDS = {"data": cmd_data, "show": cmd_show, "locality": cmd_locality, "demo": cmd_demo}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        print(COMMANDS[args.command](args))
    except (ValueError, DatasetError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: files are written atomically, so nothing partial was kept", file=sys.stderr)
        return 130
    return 0
