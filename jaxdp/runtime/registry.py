"""One idiom for every set of named things a user picks from (mixers, tasks, loggers, commands):
a `Registry` maps names to items in the order they were added, adds one with `add` or as a
decorator (`register`), and `lookup` refuses an unknown name in one line listing the choices.

>>> shapes = Registry("shape")
>>> @shapes.register("square")
... class Square: ...
>>> list(shapes), shapes["square"].__name__
(['square'], 'Square')
>>> shapes.lookup("circle")
Traceback (most recent call last):
...
jaxdp.runtime.errors.JaxdpError: unknown shape 'circle'; choose one of: square
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from typing import TypeVar

from jaxdp.runtime.errors import JaxdpError

T = TypeVar("T")


class Registry(MutableMapping[str, T]):
    """Named items of one `kind`, in the order they were added (a mapping; ``registry[name] =
    item`` is `add`, so a test can swap an item for the length of the test)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        """Add `item` under `name` (a name added again is replaced: a test may register its own)."""
        self._items[name] = item
        return item

    def register(self, name: str) -> Callable[[T], T]:
        """``@registry.register("name")`` above a class or function adds it."""
        return lambda item: self.add(name, item)

    def lookup(self, name: str, error: type[Exception] = JaxdpError, where: str = "") -> T:
        """The item named `name`, or `error` ("<where>unknown <kind> 'name'; choose one of: …")."""
        if name not in self._items:
            raise error(f"{where}unknown {self.kind} {name!r}; choose one of: {', '.join(self._items)}")
        return self._items[name]

    def __getitem__(self, name: str) -> T:
        return self._items[name]

    def __setitem__(self, name: str, item: T) -> None:
        self.add(name, item)

    def __delitem__(self, name: str) -> None:
        del self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
