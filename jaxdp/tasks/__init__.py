"""The chain-of-thought tasks of the paper's Section 6.1 (docs/paper.md §3).

>>> import numpy
>>> task = get("lis", 40)
>>> example = task.sample(numpy.random.default_rng(0))
>>> example.prompt[-1], example.target[-1]
('<sep>', '<eos>')
"""

from __future__ import annotations

import inspect

from jaxdp.tasks.base import EOS, PAD, SEP, TASKS, EncodedBatch, Example, Task, TaskBase
from jaxdp.tasks.locality import locality, locality_table

# isort: off
# registers the tasks (`TASKS`), in the order they are listed: a new task is its module and one line here
from jaxdp.tasks.arithmetic import Arithmetic
from jaxdp.tasks.lis import LIS
from jaxdp.tasks.edit_distance import EditDistance, EditDistanceLocal
# isort: on

#: Problem sizes of the paper's experiments (n operators / N numbers / n string length), and the
#: maximum sequence lengths L the paper quotes for them (without <eos>), by task: each task's own
#: `PAPER_SIZES` and `PAPER_MAX_LENGTHS` (their comments say where they come from)
PAPER_SIZES = {name: task.PAPER_SIZES for name, task in TASKS.items() if task.PAPER_SIZES}
PAPER_MAX_LENGTHS = {name: task.PAPER_MAX_LENGTHS for name, task in TASKS.items() if task.PAPER_SIZES}


def get(name: str, size: int, **options) -> Task:
    """The task `name` at `size`; `options` are the task's named options (e.g. ``border``)."""
    cls = TASKS.lookup(name, ValueError)
    allowed = [p for p in inspect.signature(cls).parameters if p != "size"]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"{name}: unknown option {unknown[0]!r}; options: {', '.join(allowed)}")
    return cls(size, **options)


__all__ = [
    "Arithmetic",
    "EOS",
    "EditDistance",
    "EditDistanceLocal",
    "EncodedBatch",
    "Example",
    "LIS",
    "PAD",
    "PAPER_MAX_LENGTHS",
    "PAPER_SIZES",
    "SEP",
    "TASKS",
    "Task",
    "TaskBase",
    "get",
    "locality",
    "locality_table",
]
