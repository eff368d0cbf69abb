"""The `Task` protocol shared by every chain-of-thought task (docs/paper.md §3).

A task turns a random problem instance into a *prompt* (the question, ending with the first
separator) and a *target* (the chain of thought, the final answer, then ``<eos>``). Tokens are
strings; a task's vocabulary fixes their integer ids, with ``<pad>`` = 0.

Lengths: ``task.max_len`` is a tight upper bound of ``len(prompt + target)`` *including*
``<eos>``. The paper quotes lengths without ``<eos>`` (e.g. LIS: 2N+3), i.e. ``max_len - 1``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np

from jaxdp.runtime.registry import Registry

PAD, EOS, SEP = "<pad>", "<eos>", "<sep>"
TOKEN_DTYPE = np.uint16  # every vocabulary stays below 2**16 (checked at construction)


@dataclasses.dataclass(frozen=True)
class Example:
    """One problem instance as string tokens."""

    prompt: list[str]
    target: list[str]

    @property
    def tokens(self) -> list[str]:
        return self.prompt + self.target


@dataclasses.dataclass(frozen=True)
class EncodedBatch:
    """Examples as padded id arrays: ``tokens[b, :length[b]]`` is prompt + target."""

    tokens: np.ndarray  # [count, max_len] TOKEN_DTYPE, <pad> (0) after length
    prompt_len: np.ndarray  # [count] int32
    length: np.ndarray  # [count] int32

    def __len__(self) -> int:
        return len(self.length)


@runtime_checkable
class Task(Protocol):
    """What the rest of jaxdp relies on. `TaskBase` implements everything but the task logic."""

    name: str
    size: int
    vocab: list[str]
    max_len: int

    def sample(self, rng: np.random.Generator) -> Example: ...
    def solve(self, prompt: Sequence[str]) -> list[str]: ...
    def answer(self, tokens: Sequence[str] | np.ndarray) -> str: ...
    def encode(self, tokens: Sequence[str]) -> np.ndarray: ...
    def decode(self, ids: Sequence[int] | np.ndarray) -> list[str]: ...
    def dependencies(self, example: Example) -> dict[int, tuple[int, ...]]: ...
    def sample_arrays(self, rng: np.random.Generator, count: int) -> EncodedBatch: ...
    def train_mixture(self) -> list[tuple[Task, float]]: ...
    def options(self) -> dict: ...


#: the tasks `jaxdp.tasks.get` knows, by name: a task is one module whose class is registered
#: with ``@TASKS.register("name")``, imported by ``jaxdp/tasks/__init__.py``
TASKS: Registry[type[TaskBase]] = Registry("task")


class TaskBase:
    """Vocabulary, encoding, answers and batching shared by the concrete tasks.

    Subclasses set `name`, `MIN_SIZE`, `MAX_SIZE` and, where the paper runs the task, its sizes
    and the lengths it quotes for them (`PAPER_SIZES`, `PAPER_MAX_LENGTHS`), and implement
    `_vocab`, `_max_len`, `random_prompt`, `solve` and `dependencies`; they may override
    `sample_arrays` with a vectorised fast path, which tests compare row by row with `solve`
    (its slow twin).
    """

    name: ClassVar[str]
    MIN_SIZE: ClassVar[int] = 1
    MAX_SIZE: ClassVar[int]
    #: the problem sizes of the paper's experiments (§6.1), and the maximum sequence lengths L it
    #: quotes for them (without <eos>); empty for a task the paper does not run
    PAPER_SIZES: ClassVar[tuple[int, ...]] = ()
    PAPER_MAX_LENGTHS: ClassVar[tuple[int, ...]] = ()

    def __init__(self, size: int):
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
            raise ValueError(f"{self.name}: size must be an integer, got {size!r}")
        if not self.MIN_SIZE <= size <= self.MAX_SIZE:
            raise ValueError(f"{self.name}: size must be in [{self.MIN_SIZE}, {self.MAX_SIZE}], got {size}")
        self.size = int(size)

    def _finish_init(self) -> None:
        """Build the vocabulary once the subclass has set its options."""
        self.vocab = self._vocab()
        if len(self.vocab) >= np.iinfo(TOKEN_DTYPE).max:
            raise ValueError(f"{self}: vocabulary of {len(self.vocab)} tokens is too large")
        self._index = {tok: i for i, tok in enumerate(self.vocab)}
        assert self.vocab[0] == PAD and len(self._index) == len(self.vocab)
        self.max_len = self._max_len()

    # --- to implement -------------------------------------------------------------------
    def _vocab(self) -> list[str]:
        raise NotImplementedError

    def _max_len(self) -> int:
        raise NotImplementedError

    def random_prompt(self, rng: np.random.Generator) -> list[str]:
        raise NotImplementedError

    def solve(self, prompt: Sequence[str]) -> list[str]:
        raise NotImplementedError

    def dependencies(self, example: Example) -> dict[int, tuple[int, ...]]:
        """For each target position p (index into prompt + target) whose value the DP defines,
        the positions of the earlier tokens it is a function of (Definition 5.3's h_k(p)).
        Pure layout tokens (separators, ``<eos>``) are left out."""
        raise NotImplementedError

    def options(self) -> dict:
        """The named options besides `size` (recorded in dataset headers)."""
        return {}

    def train_mixture(self) -> list[tuple[Task, float]]:
        """Extra training components, drawn in proportion to their weights before the training
        set is topped up with this task (Arithmetic's ``--under``). Empty by default."""
        return []

    # --- shared -------------------------------------------------------------------------
    def __repr__(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in self.options().items())
        return f"{self.name}({self.size}{opts})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and (self.size, self.options()) == (
            other.size,
            other.options(),
        )

    def __hash__(self) -> int:
        return hash((self.name, self.size, tuple(sorted(self.options().items()))))

    def sample(self, rng: np.random.Generator) -> Example:
        prompt = self.random_prompt(rng)
        return Example(prompt, self.solve(prompt))

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        try:
            return np.array([self._index[t] for t in tokens], dtype=np.int32)
        except KeyError as e:
            raise ValueError(f"token {e.args[0]!r} is not in the vocabulary of {self}") from None

    def decode(self, ids: Sequence[int] | np.ndarray) -> list[str]:
        ids = np.asarray(ids)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self.vocab)):
            bad = ids[(ids < 0) | (ids >= len(self.vocab))][0]
            raise ValueError(f"id {bad} is outside the vocabulary of {self} ({len(self.vocab)} tokens)")
        return [self.vocab[i] for i in ids.tolist()]

    def answer(self, tokens: Sequence[str] | np.ndarray) -> str:
        """The token before the first ``<eos>`` (docs/paper.md §4); "" if there is none."""
        if isinstance(tokens, np.ndarray) or (len(tokens) and not isinstance(tokens[0], str)):
            tokens = self.decode(tokens)
        tokens = list(tokens)
        if EOS not in tokens:
            return ""
        end = tokens.index(EOS)
        return tokens[end - 1] if end > 0 else ""

    def sample_arrays(self, rng: np.random.Generator, count: int) -> EncodedBatch:
        """`count` examples as padded arrays. This default loops over `sample`."""
        return self.encode_examples([self.sample(rng) for _ in range(count)])

    def encode_examples(self, examples: Sequence[Example]) -> EncodedBatch:
        tokens = np.zeros((len(examples), self.max_len), dtype=TOKEN_DTYPE)
        prompt_len = np.empty(len(examples), dtype=np.int32)
        length = np.empty(len(examples), dtype=np.int32)
        for b, ex in enumerate(examples):
            ids = self.encode(ex.tokens)
            if len(ids) > self.max_len:
                raise AssertionError(f"{self}: example of length {len(ids)} > max_len {self.max_len}")
            tokens[b, : len(ids)] = ids
            prompt_len[b], length[b] = len(ex.prompt), len(ids)
        return EncodedBatch(tokens, prompt_len, length)
