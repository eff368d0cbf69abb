"""Grids of training runs that any scheduler can split and restart.

A sweep is a list of `Cell`s (task, size, mixer, D, seed, and optionally a named variant with its
own model settings) sharing one `jaxdp.training.protocol.Protocol`. Each cell trains in the folder
its whole identity names (`jaxdp.training.protocol.run_path`, planned by `plan`):

    <exp_dir>/<task>/<mixer>/size=<n>/d=<D>/seed=<s>/<digest>/

so a cell is found by what it was trained with, never by its coordinates alone: rerunning a sweep
with any protocol field changed trains new cells beside the old ones, and rerunning it unchanged
trains nothing. `shard(cells, "i/n")` keeps every n-th cell from the i-th, so n processes, a
SLURM array or a shell loop cover the grid between them; `validate` plans every cell and refuses
a bad one before anything is built or compiled.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from jaxdp import tasks
from jaxdp.models import mixers
from jaxdp.models.config import ConfigError, ModelConfig, check_mixer_name
from jaxdp.runtime import capacity
from jaxdp.runtime.errors import ProtocolError
from jaxdp.training import limits
from jaxdp.training.protocol import Protocol, TrainConfig, run_identity, run_path


@dataclasses.dataclass(frozen=True)
class Cell:
    """One grid point. `mixer` is a registered mixer or a hybrid of them (``linear+standard``);
    `variant` names a setting of the model beyond the protocol's (for
    instance Figure 2's window "kB>=m"), and `options` holds it as ModelConfig fields."""

    task: str
    size: int
    mixer: str
    dim: int
    seed: int = 0
    variant: str = ""
    options: tuple[tuple[str, Any], ...] = ()
    lr: float | None = None  # None: the protocol's (``--lrs`` makes each value its own cell)
    train_examples: int | None = None  # None: the protocol's (``--train-examples``)

    @property
    def label(self) -> str:
        name = f"{self.task}/{self.mixer}/size={self.size}/d={self.dim}/seed={self.seed}"
        name += (f"/lr={self.lr:g}" if self.lr is not None else "") + (
            f"/n={self.train_examples}" if self.train_examples is not None else ""
        )
        return name + (f" [{self.variant}]" if self.variant else "")


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a cell trains: its task, configs and the run folder its identity names."""

    cell: Cell
    task: tasks.Task
    model_config: ModelConfig
    train_config: TrainConfig
    path: str
    train_examples: int


def plan(cell: Cell, protocol: Protocol) -> Plan:
    task = protocol.task(cell.task, cell.size)
    model_config = protocol.model_config(task, cell.mixer, cell.dim, **dict(cell.options))
    train_config = dataclasses.replace(
        protocol.train, seed=cell.seed, **({"lr": cell.lr} if cell.lr is not None else {})
    )
    examples = cell.train_examples or protocol.train_examples
    identity = run_identity(task, model_config, train_config, examples, protocol.data_seed, protocol.test_examples)
    return Plan(cell, task, model_config, train_config, run_path(identity), examples)


def grid(
    task_sizes: dict[str, Sequence[int]],
    mixer_names: Sequence[str],
    dims: dict[str, Sequence[int]],
    seeds: Sequence[int] = (0,),
    lrs: Sequence[float | None] = (None,),
    train_examples: Sequence[int | None] = (None,),
) -> list[Cell]:
    """Every (task, size, mixer, D, seed, lr, training examples) combination; `dims` maps each
    task to its D grid; None in `lrs` or `train_examples` takes the protocol's."""
    for mixer in mixer_names:
        try:
            check_mixer_name(mixer)
        except ConfigError as error:
            raise ProtocolError(
                f"unknown mixer {mixer!r}; choose from {', '.join(mixers.available())}, "
                "or a hybrid such as linear+standard"
            ) from error
    cells = []
    for name, sizes in task_sizes.items():
        if name not in tasks.TASKS:
            raise ProtocolError(f"unknown task {name!r}; choose one of: {', '.join(tasks.TASKS)}")
        for size, mixer, dim, seed, lr, n in itertools.product(
            sizes, mixer_names, dims[name], seeds, lrs, train_examples
        ):
            cells.append(Cell(name, size, mixer, dim, seed, lr=lr, train_examples=n))
    return cells


def shard(cells: Sequence[Cell], spec: str | None) -> list[Cell]:
    """Cells i, i+n, i+2n, … for spec "i/n" (all cells for None)."""
    if spec is None:
        return list(cells)
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise ProtocolError(f"--shard takes i/n with integers, got {spec!r}") from None
    if not 0 <= i < n:
        raise ProtocolError(f"--shard {spec}: need 0 <= i < n")
    return list(cells)[i::n]


def validate(cells: Iterable[Cell], protocol: Protocol) -> list[Plan]:
    """Plan every cell, so that a bad cell fails before any data is built or anything compiles:
    settings that cannot work, and cells or datasets this machine cannot hold (`jaxdp.training.limits`)."""
    plans = [plan(cell, protocol) for cell in cells]
    train = protocol.train
    if train.check_every is not None and train.check_examples > protocol.valid_examples:
        raise ProtocolError(f"check_examples {train.check_examples} > valid_examples {protocol.valid_examples}")
    for examples in {p.train_examples for p in plans}:
        if train.batch_size > examples:
            raise ProtocolError(f"batch_size {train.batch_size} > train_examples {examples}")
    for task, examples in {(p.task, p.train_examples) for p in plans}:
        capacity.check_dataset_memory(task, examples + protocol.test_examples + protocol.valid_examples)
    for examples in {p.train_examples for p in plans}:
        limits.check_steps(train, examples)
    for config in {p.model_config for p in plans}:
        limits.check_training_memory(config, protocol.train.batch_size, config.max_len)  # the task's max_len
    return plans


def dataset_dir(data_root: Path, task: tasks.Task, protocol: Protocol, train_examples: int | None = None) -> Path:
    """The folder of a task's datasets: `train_examples` (default: the protocol's) + test."""
    options = "".join(f",{k}={v}" for k, v in sorted(task.options().items()))
    return (
        Path(data_root)
        / f"{task.name}-{task.size}{options}"
        / f"n={train_examples or protocol.train_examples}+{protocol.test_examples}-seed={protocol.data_seed}"
    )
