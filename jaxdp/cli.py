"""Command line: ``python -m jaxdp {data,show,locality,train,eval}``; each prints a one-line
summary, and a refusal prints one ``error:`` line and exits 2. (The README's demo is
``python -m experiments.demo``.)"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from jaxdp import tasks
from jaxdp.args import Parser, add_reporting, add_version, field_type, int_at_least, reporting, task_option
from jaxdp.models import mixers
from jaxdp.models.config import SAVED_MIXER_KEY
from jaxdp.runtime import interrupts
from jaxdp.runtime.errors import JaxdpError
from jaxdp.runtime.registry import Registry
from jaxdp.tasks.builder import build_to_dir, validation_to_dir
from jaxdp.tasks.dataset import DatasetError
from jaxdp.training.protocol import Protocol, parse_settings, run_identity, run_path, settable

#: `train` flags for the most used protocol fields (any field: --set FIELD=VALUE); defaults from `Protocol()`
TRAIN_FLAGS = {
    "epochs": "--epochs",
    "batch_size": "--batch-size",
    "lr": "--lr",
    "warmup_epochs": "--warmup-epochs",
    "weight_decay": "--weight-decay",
    "eval_examples": "--eval-examples",
    "checkpoint_every": "--checkpoint-every",
    "num_layers": "--layers",
    "num_heads": "--heads",
    "dropout": "--dropout",
    "block_size": "--block-size",
}


def _task_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    also = "" if required else " (default: the --config file's)"
    p.add_argument("--task", required=required, choices=list(tasks.TASKS), help="the task" + also)
    p.add_argument("--size", required=required, type=int, help="n operators / N numbers / n string length" + also)
    p.add_argument(
        "--option",
        action="append",
        type=task_option,
        default=[],
        metavar="KEY=VALUE",
        help="a task option, e.g. border=costs or under=false (repeatable)",
    )


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        default=None,
        metavar="FILE.json",
        help="a whole run from one file, e.g. a run folder's config.json (jaxdp.training.run_config); "
        "the flags given here win over it",
    )
    p.add_argument("--mixer", choices=mixers.available(), help="the mixer (default: the --config file's)")
    p.add_argument("--model", dest="mixer", choices=mixers.available(), help=argparse.SUPPRESS)  # saved commands
    p.add_argument("--dim", type=int_at_least(1), help="hidden size D (default: the --config file's)")
    p.add_argument(
        "--seed", type=int_at_least(0), default=None, help="training seed (default: the --config file's, else 0)"
    )
    defaults = Protocol().settings()
    for field, flag in TRAIN_FLAGS.items():
        p.add_argument(
            flag,
            dest=field,
            type=field_type(field),
            default=None,
            help=f"{field} (default: {defaults.get(field, 'the mixer' + chr(39) + 's own')})",
        )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help=f"any other protocol field or mixer option (repeatable): {', '.join(settable())}",
    )
    p.add_argument("--data", default=None, help="dataset folder (default data/<task>-<size>)")
    p.add_argument(
        "--out", default=None, help="run folder (default runs/train/<task>/<mixer>/size=<n>/d=<D>/seed=<s>/<digest>)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_reporting(p)


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m jaxdp", description=__doc__)
    add_version(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{data,show,locality,train,eval}")
    command = lambda name, text: sub.add_parser(name, help=text, description=text)  # noqa: E731

    p = command("data", "build and save a train/test dataset")
    _task_args(p)
    p.add_argument("--train", type=int_at_least(1), required=True, help="training examples")
    p.add_argument("--test", type=int_at_least(1), required=True, help="test examples")
    p.add_argument("--out", required=True, help="folder for train.npz and test.npz")
    p.add_argument("--seed", type=int_at_least(0), default=0, help="data seed (default: 0)")
    p.add_argument(
        "--workers", type=int_at_least(1), default=None, help="generator processes (default: all cores for big builds)"
    )
    p.add_argument("--force", action="store_true", help="overwrite a different or corrupt dataset in --out")

    p = command("show", "print a few examples of a task")
    _task_args(p)
    p.add_argument("--count", type=int_at_least(1), default=2, help="examples (default: 2)")
    p.add_argument("--seed", type=int_at_least(0), default=0, help="seed (default: 0)")

    p = command("locality", "measured locality m of every task at the paper's sizes")
    p.add_argument("--samples", type=int_at_least(1), default=300, help="samples per cell (default: 300)")
    p.add_argument("--seed", type=int_at_least(0), default=0, help="seed (default: 0)")

    p = command("train", "train one model on one task and report its test accuracy")
    _task_args(p, required=False)
    _train_args(p)

    p = command("eval", "greedy-decode the test set with a run's latest checkpoint")
    p.add_argument("--run", required=True, help="run folder written by `train`")
    p.add_argument("--data", default=None, help="dataset folder (default: the one the run was trained on)")
    p.add_argument("--examples", type=int_at_least(1), default=None, help="test examples to decode (default: all)")
    p.add_argument("--full", action="store_true", help="decode by full forward passes (slow cross-check)")

    return parser


def _make_task(args) -> tasks.Task:
    return tasks.get(args.task, args.size, **dict(args.option))


def _show(task: tasks.Task, example: tasks.Example) -> None:
    print(f"  prompt: {' '.join(example.prompt)}")
    print(f"  target: {' '.join(example.target)}")
    print(f"  answer: {task.answer(example.target)}")


#: the subcommands of ``python -m jaxdp``, by name
COMMANDS: Registry = Registry("command")


@COMMANDS.register("data")
def cmd_data(args) -> str:
    task = _make_task(args)
    start = time.perf_counter()
    train, test, built = build_to_dir(task, args.out, args.train, args.test, args.seed, args.workers, force=args.force)
    verb = f"built in {time.perf_counter() - start:.1f} s" if built else "already built, loaded and checked"
    longest = max(int(train.length.max(initial=0)), int(test.length.max(initial=0)))
    return (
        f"{task}: {len(train)} train + {len(test)} test examples "
        f"(longest {longest} of max_len {task.max_len}) in {args.out}, {verb}"
    )


@COMMANDS.register("show")
def cmd_show(args) -> str:
    task = _make_task(args)
    rng = np.random.default_rng(args.seed)
    print(
        f"{task}: vocabulary {len(task.vocab)} tokens, max_len {task.max_len}; "
        f"{args.count} example(s), seed {args.seed}"
    )
    for _ in range(args.count):
        _show(task, task.sample(rng))
    return f"{task}: {args.count} example(s) shown"


@COMMANDS.register("locality")
def cmd_locality(args) -> str:
    print(tasks.locality_table(args.samples, args.seed))
    return f"locality measured on {args.samples} samples per cell (seed {args.seed})"


def _load_split(data: Path, task: tasks.Task, split: str):
    from jaxdp.tasks.dataset import load

    path = data / f"{split}.npz"
    if not path.exists():
        raise DatasetError(
            f"no dataset at {path}; build it first: python -m jaxdp data --task {task.name} "
            f"--size {task.size} --train N --test N --out {data}"
        )
    return load(path, task, split)


def _summary(result: dict) -> str:
    return (
        f"accuracy {result['accuracy']:.3f} (teacher-forced exact {result['teacher_forced_exact']:.3f}, "
        f"CoT exact {result['cot_exact_match']:.3f}, token {result['token_accuracy']:.3f}) on "
        f"{result['examples']} test examples"
    )


@COMMANDS.register("train")
def cmd_train(args) -> str:
    from jaxdp.training.run import train

    from_file = _apply_config(args)
    report = reporting(args)
    task = _make_task(args)
    given = {field: getattr(args, field) for field in TRAIN_FLAGS if getattr(args, field) is not None}
    protocol = Protocol().set(**from_file).set(**given, **parse_settings(args.set))
    model_config = protocol.model_config(task, args.mixer, args.dim)
    train_config = dataclasses.replace(protocol.train, seed=args.seed)
    data = Path(args.data or f"data/{task.name}-{task.size}")
    train_set, test_set = _load_split(data, task, "train"), _load_split(data, task, "test")
    identity = run_identity(task, model_config, train_config, len(train_set), train_set.seed, len(test_set))
    out = Path(args.out or Path("runs/train") / run_path(identity))
    valid_set = None
    if train_config.check_every is not None:  # the stopping rule reads the folder's validation set
        valid_set = validation_to_dir(data, train_set, test_set, protocol.valid_examples)
    result = train(
        out,
        task,
        model_config,
        train_config,
        train_set,
        test_set,
        progress=not args.quiet,
        data_dir=str(data),
        valid_set=valid_set,
        **report,
    )
    return (
        f"{task} {args.mixer} D={args.dim}: {_summary(result)}; final loss {result['final_loss']:.4f}, "
        f"{result['steps']} steps -> {out}"
    )


def _apply_config(args) -> dict:
    """Fill the flags left out from ``--config`` (`jaxdp.training.run_config`) and return the protocol
    settings it makes (its mixer options only if the run keeps its mixer); refuse a run that
    still lacks its task, size, mixer or D."""
    from jaxdp.training import run_config

    cfg = run_config.load(args.config) if args.config else run_config.RunConfig()
    for field in ("task", "size", "mixer", "dim", "seed", "data"):
        if getattr(args, field) is None:
            setattr(args, field, getattr(cfg, field))
    args.seed = 0 if args.seed is None else args.seed
    for field in ("task", "size", "mixer", "dim"):
        if getattr(args, field) is None:
            raise JaxdpError(f"--{field} is required (or a --config file that names it)")
    if args.task == cfg.task:
        args.option = list(cfg.task_options.items()) + list(args.option)
    own = {f"{args.mixer}.{k}": v for k, v in cfg.mixer_options.items()} if args.mixer == cfg.mixer else {}
    return {**cfg.settings, **own}


@COMMANDS.register("eval")
def cmd_eval(args) -> str:
    from jaxdp.evaluation.evaluate import evaluate
    from jaxdp.training.run import restore_checkpoint, total_steps

    model, config, step = restore_checkpoint(args.run)
    task = tasks.get(config["task"]["name"], config["task"]["size"], **config["task"]["options"])
    data = args.data or config["data"].get("dir")
    if data is None:
        raise DatasetError(f"{args.run}: the run does not record its dataset; pass --data")
    result = evaluate(model, _load_split(Path(data), task, "test"), limit=args.examples, full=args.full)
    total = total_steps(config)
    scored = (
        f"the finished run (step {step})"
        if step >= total and (Path(args.run) / "result.json").exists()
        else f"an UNFINISHED run: its checkpoint of step {step} of {total} (still training, or interrupted)"
    )
    model = f"{config['model'][SAVED_MIXER_KEY]} D={config['model']['dim']}"
    return f"{args.run}: {task} {model}: {_summary(result)}; scored {scored}"


def quiet_libraries() -> None:
    """orbax reports its own failures (a full disk, say) through absl's logger, tracebacks
    included; the commands turn each into one ``error:`` line, so the library loggers keep quiet
    unless ``JAXDP_VERBOSE=1`` is set."""
    if os.environ.get("JAXDP_VERBOSE") != "1":
        for name in ("absl", "concurrent.futures", "asyncio"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        sys.unraisablehook = _drop_closed_loop_noise


def _drop_closed_loop_noise(unraisable) -> None:
    """orbax's background threads may call into an event loop it already closed, after a read
    failed; Python then prints "Event loop is closed" for each. That one is dropped."""
    if isinstance(unraisable.exc_value, RuntimeError) and str(unraisable.exc_value) == "Event loop is closed":
        return
    sys.__unraisablehook__(unraisable)


def run_command(fn: Callable[[], str | tuple[str, int] | None]) -> int:
    """Run a command's body: print what it returns (exit 0, or the code it gives); a refusal
    prints one ``error:`` line (exit 2); Ctrl-C or SIGTERM one ``interrupted`` line (exit 130 or
    143) once training has checkpointed its last completed step."""
    quiet_libraries()
    with interrupts.sigterm_as_interrupt():
        try:
            out = fn()
        except (JaxdpError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        except OSError as e:
            print(f"error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as e:
            name = e.signal_name if isinstance(e, interrupts.Interrupted) else "SIGINT"
            print(
                f"interrupted ({name}): training keeps a checkpoint of its last completed step and files are "
                "written atomically; run the same command to resume",
                file=sys.stderr,
            )
            return interrupts.exit_code(e)
    text, code = out if isinstance(out, tuple) else (out, 0)
    if text:
        print(text, flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return run_command(lambda: COMMANDS[args.command](args))
