"""Measured locality m of a task format (Definition 5.3)."""

from __future__ import annotations

from typing import Iterable

from jaxdp.tasks.base import Example, Task


def locality(task: Task, examples: Iterable[Example]) -> int:
    """The largest distance from a CoT token back to a token its DP value depends on, over
    `examples`, read from the task's declared `dependencies` (tested by perturbation in
    tests/tasks/test_locality.py)."""
    m = 0
    for example in examples:
        for position, deps in task.dependencies(example).items():
            m = max(m, position - min(deps))
    return m
