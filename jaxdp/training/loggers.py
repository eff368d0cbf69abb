"""Where a run's metrics are mirrored besides ``metrics.jsonl`` (which stays the record):
TensorBoard and Weights & Biases, chosen by name (``--log tensorboard,wandb``).

* ``tensorboard``: an event file under ``<run>/tensorboard/`` through tensorboardX (no
  TensorFlow), one scalar per numeric field (``train/loss``, ``train/lr``, ``eval/accuracy``, …)
  at the record's step. ``tensorboard --logdir runs/`` shows every run of a sweep side by side.
* ``wandb``: a W&B run in ``<run>/wandb/``, named and identified by the run's protocol digest
  (so a resumed run continues the same W&B run), its config the run's ``config.json``. Offline
  with ``WANDB_MODE=offline`` (``wandb sync`` uploads it later); online with a logged-in account.

Both are optional extras (``pip install -e ".[tracking]"``); naming one that is not installed is
refused in one line before anything trains. A run resumed from step s logs the lines after s
again, with the same values (`jaxdp.training.metrics`); TensorBoard then holds both copies of those
points, W&B keeps the first.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

from jaxdp.models.config import SAVED_MIXER_KEY
from jaxdp.runtime.errors import ProtocolError
from jaxdp.runtime.registry import Registry

#: the writers `open_all` opens, by name; each says the module it needs and the pip extra that
#: installs it
LOGGERS: Registry[type] = Registry("logger")


def parse(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"tensorboard,wandb"`` (or a list of names) -> the names, each checked to be known and
    installed."""
    if not text:
        return ()
    names = [n.strip() for part in ([text] if isinstance(text, str) else text) for n in part.split(",") if n.strip()]
    for name in names:
        writer = LOGGERS.lookup(name, ProtocolError, where="--log: ")
        module, extra = writer.module, writer.extra
        if importlib.util.find_spec(module) is None:
            raise ProtocolError(f'--log {name}: {module} is not installed; pip install -e ".[{extra}]"')
    return tuple(dict.fromkeys(names))


def scalars(record: dict) -> dict[str, float]:
    """The numeric fields of a metrics record as scalar names: ``loss`` -> ``train/loss``,
    ``eval_accuracy`` -> ``eval/accuracy``; ``step`` is the x-axis, not a scalar."""
    out = {}
    for key, value in record.items():
        if key == "step" or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        out[f"eval/{key[5:]}" if key.startswith("eval_") else f"train/{key}"] = float(value)
    return out


@LOGGERS.register("tensorboard")
class TensorBoard:
    module, extra = "tensorboardX", "tracking"

    def __init__(self, run_dir: Path, config: dict):
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(logdir=str(run_dir / "tensorboard"))
        self.writer.add_text("config", f"```\n{config}\n```", 0)

    def write(self, record: dict) -> None:
        for name, value in scalars(record).items():
            self.writer.add_scalar(name, value, record["step"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


@LOGGERS.register("wandb")
class WandB:
    module, extra = "wandb", "tracking"

    def __init__(self, run_dir: Path, config: dict):
        import wandb

        digest = config.get("digest", run_dir.name)
        self.run = wandb.init(
            dir=str(run_dir),
            project=os.environ.get("WANDB_PROJECT", "jaxdp"),
            id=digest,
            name=f"{config['task']['name']}-{config['model'][SAVED_MIXER_KEY]}-d{config['model']['dim']}-{digest}",
            config=config,
            resume="allow",
            reinit="create_new",
        )

    def write(self, record: dict) -> None:
        self.run.log(scalars(record), step=record["step"])

    def close(self) -> None:
        self.run.finish()


def open_all(names: Sequence[str], run_dir: Path, config: dict) -> list:
    """One open writer per name (`LOGGERS`), each with ``write(record)`` and ``close()``. If one
    fails to open, those already open are closed before the error propagates."""
    writers = []
    try:
        for name in names:
            writers.append(LOGGERS[name](run_dir, config))
    except BaseException:
        close_all(writers)
        raise
    return writers


def close_all(writers: Sequence) -> None:
    """Close every writer, even when one of them raises (the first error propagates)."""
    error = None
    for writer in writers:
        try:
            writer.close()
        except BaseException as e:  # keep closing the others
            error = error or e
    if error is not None:
        raise error
