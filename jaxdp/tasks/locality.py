"""Measured locality m of a task format (Definition 5.3)."""

from __future__ import annotations

from collections.abc import Iterable

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


def locality_table(samples: int = 300, seed: int = 0) -> str:
    """Markdown table of the measured m and L (with <eos>) of every task at the paper's sizes."""
    import numpy as np

    from jaxdp.tasks import PAPER_SIZES, get

    rows = ["| task | size | max_len L | measured m | m / L |", "|---|---|---|---|---|"]
    for name, sizes in PAPER_SIZES.items():
        for size in sizes:
            task = get(name, size)
            rng = np.random.default_rng(seed)
            m = locality(task, (task.sample(rng) for _ in range(samples)))
            rows.append(f"| {name} | {size} | {task.max_len} | {m} | {m / task.max_len:.2f} |")
    return "\n".join(rows)
