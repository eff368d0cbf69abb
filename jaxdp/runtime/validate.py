"""Field checks shared by the config dataclasses: each raises `error` with a message that names
``<Owner>.<field>``, the value given and what is allowed."""

from __future__ import annotations

import math
from collections.abc import Sequence


def integer(error: type[Exception], where: str, value, low: int = 1, high: int | None = None) -> None:
    """An int (not a bool) in [low, high]."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high)
    if not ok:
        allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
        raise error(f"{where}: must be {allowed}, got {value!r}")


def real(
    error: type[Exception],
    where: str,
    value,
    low: float,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """A finite int or float (not a bool, not a string) in the interval given."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    inside = (
        number
        and math.isfinite(value)
        and (value > low if low_open else value >= low)
        and (value < high if high_open else value <= high)
    )
    if not inside:
        left, right = "(" if low_open else "[", ")" if high_open or high == math.inf else "]"
        raise error(f"{where}: must be a finite number in {left}{low:g}, {high:g}{right}, got {value!r}")


def choice(error: type[Exception], where: str, value, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise error(f"{where}: {value!r} is not allowed; choose one of {', '.join(allowed)}")
