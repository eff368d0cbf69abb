"""Command line: ``python -m jaxdp {data,show,locality,demo}``; each prints a one-line summary."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from jaxdp import tasks
from jaxdp.errors import CheckpointError, TrainingError
from jaxdp.models.config import ATTENTIONS
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

    p = sub.add_parser("train", help="train one model on one task and report its test accuracy")
    _task_args(p)
    p.add_argument("--model", required=True, choices=ATTENTIONS, help="attention kernel")
    p.add_argument("--dim", type=int, required=True, help="hidden size D")
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--block-size", type=int, default=None, help="sparse block B (default 2^floor(log2 sqrt L))")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--warmup-epochs", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-examples", type=int, default=None, help="test examples to decode (default: all)")
    p.add_argument("--data", default=None, help="dataset folder (default data/<task>-<size>)")
    p.add_argument("--out", default=None, help="run folder (default runs/train/<task>/<model>/size=<n>/d=<D>/seed=<s>)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("eval", help="greedy-decode the test set with a run's latest checkpoint")
    p.add_argument("--run", required=True, help="run folder written by `train`")
    p.add_argument("--data", default=None, help="dataset folder (default: the one the run was trained on)")
    p.add_argument("--examples", type=int, default=None, help="test examples to decode (default: all)")
    p.add_argument("--full", action="store_true", help="decode by full forward passes (slow cross-check)")

    p = sub.add_parser("demo", help="the README's first command: small datasets, locality, three models trained and decoded, a heatmap")
    p.add_argument("--out", default="data/demo")
    p.add_argument("--runs", default="runs/demo", help="folder for the demo's training runs")
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


DEMO_TRAINING = dict(task="lis", size=6, options={"value_range": 16}, dims=(16, 64), train=4000, test=300,
                     epochs=15, batch_size=64, lr=1e-3)  # about 3 minutes for the 6 runs on 2 CPU cores


def demo_sweep(runs: str, data_root: str, progress: bool = True) -> tuple[list[dict], Path]:
    """Train the three models on one tiny task at two dims, decode the test set, draw the heatmap."""
    from jaxdp import plots, sweep
    from jaxdp.train import TrainConfig

    d = DEMO_TRAINING
    cells = sweep.grid({d["task"]: (d["size"],)}, ATTENTIONS, {d["task"]: d["dims"]})
    train = TrainConfig(epochs=d["epochs"], batch_size=d["batch_size"], lr=d["lr"], warmup_epochs=1)
    protocol = sweep.Protocol(train_examples=d["train"], test_examples=d["test"], train=train, dropout=0.0,
                              task_options={d["task"]: d["options"]})  # fmt: skip
    sweep.run(runs, cells, protocol, data_root=data_root, progress=progress)
    rows = sweep.collect(runs)
    sweep.write_csv(rows, Path(runs) / "results.csv")
    figure = plots.heatmaps(rows, Path(runs) / "demo.png", title="demo: LIS(6), final-answer accuracy (%)")
    return rows, figure


def _demo_construction() -> None:
    """One proof check (Lemma A.12) from the `constructions` package beside jaxdp, if present;
    imported here, at run time, so the library never depends on it."""
    try:
        from constructions.checks import CHECKS
    except ImportError:
        return
    import jax

    check = CHECKS["copy_sparse"]
    with jax.enable_x64(True):
        m = check.measure(64)
    print(f"\nChecking a proof: Lemma {m.lemma} ({check.claim}) with hand-set weights in "
          f"jaxdp's sparse blocks, L = {m.size}, float64: largest error {m.max_error:.1e} "
          f"<= eps = {m.eps:.0e}: {'holds' if m.ok else 'FAILS'} (all lemmas: python -m constructions.report)")


def cmd_demo(args) -> str:
    for name, size in DEMO_SIZES.items():
        task = tasks.get(name, size)
        train, test, _ = build_to_dir(task, f"{args.out}/{name}-{size}", 2000, 200, args.seed, progress=False)
        print(f"{task}: {len(train)} train / {len(test)} test examples, max_len {task.max_len}")
        _show(task, test.example(0))  # the test split holds full-size examples only
    print("\nMeasured locality m (Definition 5.3) at the paper's sizes:")
    print(locality_table(samples=50, seed=args.seed))
    d = DEMO_TRAINING
    print(f"\nTraining the three models on {d['task']}({d['size']}) at D = {d['dims']} "
          f"({d['train']} examples, {d['epochs']} epochs each), then greedy decoding {d['test']} test examples:")  # fmt: skip
    from jaxdp import sweep

    rows, figure = demo_sweep(args.runs, args.out)
    print(sweep.accuracy_table(rows))
    _demo_construction()
    return f"demo: datasets in {args.out}, runs and results.csv in {args.runs}, heatmap {figure}"


def _load_split(data: Path, task: tasks.Task, split: str):
    from jaxdp.tasks.dataset import load

    path = data / f"{split}.npz"
    if not path.exists():
        raise DatasetError(f"no dataset at {path}; build it first: python -m jaxdp data --task {task.name} "
                           f"--size {task.size} --train N --test N --out {data}")  # fmt: skip
    return load(path, task, split)


def _summary(result: dict) -> str:
    return (f"accuracy {result['accuracy']:.3f} (CoT exact {result['cot_exact_match']:.3f}, "
            f"token {result['token_accuracy']:.3f}) on {result['examples']} test examples")  # fmt: skip


def cmd_train(args) -> str:
    from jaxdp.models import ModelConfig
    from jaxdp.train import TrainConfig, train

    task = _make_task(args)
    model_config = ModelConfig(attention=args.model, dim=args.dim, num_layers=args.layers, num_heads=args.heads,
                               dropout=args.dropout, block_size=args.block_size, max_len=task.max_len,
                               vocab_size=len(task.vocab))  # fmt: skip
    train_config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                               warmup_epochs=min(args.warmup_epochs, args.epochs), eval_examples=args.eval_examples)  # fmt: skip
    data = Path(args.data or f"data/{task.name}-{task.size}")
    train_set, test_set = _load_split(data, task, "train"), _load_split(data, task, "test")
    out = Path(args.out or f"runs/train/{task.name}/{args.model}/size={task.size}/d={args.dim}/seed={args.seed}")
    result = train(out, task, model_config, train_config, train_set, test_set, progress=not args.quiet,
                   data_dir=str(data))  # fmt: skip
    return (f"{task} {args.model} D={args.dim}: {_summary(result)}; final loss {result['final_loss']:.4f}, "
            f"{result['steps']} steps -> {out}")  # fmt: skip


def cmd_eval(args) -> str:
    from jaxdp.evaluate import evaluate
    from jaxdp.train import restore_model

    model, config = restore_model(args.run)
    task = tasks.get(config["task"]["name"], config["task"]["size"], **config["task"]["options"])
    data = args.data or config["data"].get("dir")
    if data is None:
        raise DatasetError(f"{args.run}: the run does not record its dataset; pass --data")
    result = evaluate(model, _load_split(Path(data), task, "test"), limit=args.examples, full=args.full)
    return f"{args.run}: {task} {config['model']['attention']} D={config['model']['dim']}: {_summary(result)}"


COMMANDS = {"data": cmd_data, "show": cmd_show, "locality": cmd_locality, "demo": cmd_demo, "train": cmd_train,
            "eval": cmd_eval}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        print(COMMANDS[args.command](args))
    except (ValueError, DatasetError, TrainingError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: files are written atomically and training keeps a checkpoint of its last step; "
              "run the same command to resume", file=sys.stderr)  # fmt: skip
        return 130
    return 0
