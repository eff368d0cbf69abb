"""Argparse pieces every command line of the project shares (``python -m jaxdp``, the experiment
scripts, the benchmarks): a parser with one-line errors and exit 2, typed flags that name the bad
value (`int_at_least`, `number_in`, `field_type`, `task_option`), ``--version``, and the reporting
flags (``--log``, ``--eval-every``)."""

from __future__ import annotations

import argparse
import math

from jaxdp.runtime.errors import JaxdpError
from jaxdp.training.protocol import option_value, parse_value


class Parser(argparse.ArgumentParser):
    """argparse with abbreviations off (``--epoch`` is not taken for ``--epochs``), defaults in
    the help, and one-line errors: ``error: argument --examples: must be >= 1, got -5`` (exit 2)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def add_version(parser: argparse.ArgumentParser) -> None:
    from jaxdp import __version__

    parser.add_argument("--version", action="version", version=f"jaxdp {__version__}")


def task_option(text: str) -> tuple[str, object]:
    """``key=value``, the value read as a task option (`jaxdp.training.protocol.option_value`)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--option takes key=value, got {text!r}")
    key, value = text.split("=", 1)
    return key, option_value(value)


def int_at_least(low: int):
    """An argparse type: an integer >= `low`, else a one-line usage error naming the flag."""

    def read(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    read.__name__ = f"integer >= {low}"
    return read


def number_in(low: float, high: float = math.inf, *, low_open: bool = True):
    """An argparse type: a finite number in (low, high] (or [low, high]), else a one-line usage error."""

    def read(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or not (value > low if low_open else value >= low) or value > high:
            interval = (
                f"in {'(' if low_open else '['}{low:g}, {high:g}]"
                if math.isfinite(high)
                else f"{'>' if low_open else '>='} {low:g}"
            )
            raise argparse.ArgumentTypeError(f"must be {interval}, got {text}")
        return value

    read.__name__ = "number"
    return read


def field_type(field: str):
    def read(text: str):
        try:
            return parse_value(field, text)
        except JaxdpError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    read.__name__ = field
    return read


def add_reporting(p: argparse.ArgumentParser) -> None:
    """``--log`` and ``--eval-every``, shared by `train` and the experiment scripts."""
    p.add_argument(
        "--log",
        default=None,
        metavar="NAMES",
        help="mirror metrics.jsonl to these loggers, comma-separated: tensorboard (an event file in the "
        "run folder), wandb (a W&B run; WANDB_MODE=offline works) (default: none)",
    )
    p.add_argument(
        "--eval-every",
        type=int_at_least(1),
        default=None,
        metavar="EPOCHS",
        help="every EPOCHS epochs, greedy-decode the first 200 test examples and log their scores "
        "as eval_* (default: off)",
    )


def reporting(args) -> dict:
    """`train`'s reporting keywords from ``--log`` and ``--eval-every`` (loggers checked here)."""
    from jaxdp.training import loggers

    return {"log_to": loggers.parse(args.log), "eval_every": args.eval_every}
