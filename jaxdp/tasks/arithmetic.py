"""Arithmetic(n, p): evaluate an expression over the integers mod p step by step (docs/paper.md §3).

Expression. Built top-down as in the Feng et al. benchmark: start from a random number and,
n times, replace a uniformly chosen number x by ``a op b`` whose value is x (a uniform, op
uniform over ``+ - * /``, b solved for; draws that would need a division by zero are redrawn).
The new operator gets brackets only where precedence needs them, judged from its neighbours:
always after ``/``; for ``+``/``-`` also after ``*`` or ``-`` or before ``*`` or ``/``.
Division is multiplication by the modular inverse, so the written expression evaluates to the
starting number whatever grouping standard precedence gives it.

Chain of thought (paper Appendix C): ``e0 = e1 = … = en <eos>``; each step evaluates the
*leftmost handle*, the leftmost ``a op b`` of two numbers that standard precedence and
left-associativity allow to evaluate now, and a bracket pair left around a single number
disappears in the same step. Each step therefore removes exactly one operator; the last item is
the answer.

``order="benchmark"`` writes the chain as the Feng et al. benchmark does: the expression's build
history reversed, so each step undoes the last expansion (it collapses one ``a op b`` of two
numbers, with its brackets, which need not be the leftmost). That chain is not a function of the
expression (several build histories give one expression), so `solve` refuses it and examples come
from `sample`; it has the same format, length bound and block locality as the default.

Locality (§5.2): the content of each block e_{k+1} depends only on the preceding block e_k.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

from jaxdp.tasks.base import EOS, PAD, TASKS, Example, TaskBase

OPS = ("+", "-", "*", "/")
_TIGHT = ("*", "/")
ORDERS = ("leftmost", "benchmark")


def _chain(expressions) -> list[str]:
    """``e1 = e2 = … = ek <eos>`` from a sequence of token lists."""
    target: list[str] = []
    for expr in expressions:
        target += [str(t) for t in expr] + ["="]
    target[-1] = EOS
    return target


@TASKS.register("arithmetic")
class Arithmetic(TaskBase):
    """Arithmetic with `size` = n operators in the prompt, over the integers mod `modulus`.

    `under` (the benchmark's ``--under``, on by default as in the paper): the training set also
    holds expressions with k = 1..n operators, drawn in proportion to k, before it is topped up
    with n-operator expressions (see `jaxdp.tasks.dataset`). The test set holds only n.
    `order`: "leftmost" (the paper's Appendix C, the default) or "benchmark" (module docstring).
    """

    name = "arithmetic"
    MIN_SIZE, MAX_SIZE = 1, 100
    # The format allows up to 2n^2+2n+1 tokens (85, 221, 365, 545); the paper's figures are maxima
    # seen in its data, and its 87 at n = 6 exceeds the bound, so that count holds two more tokens.
    PAPER_SIZES, PAPER_MAX_LENGTHS = (6, 10, 13, 16), (87, 221, 355, 505)

    def __init__(self, size: int, modulus: int = 11, under: bool = True, order: str = "leftmost"):
        super().__init__(size)
        if order not in ORDERS:
            raise ValueError(f"arithmetic: order must be one of {ORDERS}, got {order!r}")
        self.order = order
        if not isinstance(modulus, int) or modulus < 2 or any(modulus % d == 0 for d in range(2, modulus)):
            raise ValueError(f"arithmetic: modulus must be a prime, got {modulus!r}")
        if modulus > 1000:
            raise ValueError(f"arithmetic: modulus must be at most 1000, got {modulus}")
        self.modulus = modulus
        self.under = bool(under)
        self._inverse = [0] + [pow(v, modulus - 2, modulus) for v in range(1, modulus)]
        self._finish_init()

    def options(self) -> dict:
        return {"modulus": self.modulus, "under": self.under, "order": self.order}

    def _vocab(self) -> list[str]:
        return [PAD, EOS, *OPS, "(", ")", "="] + [str(v) for v in range(self.modulus)]

    def _max_len(self) -> int:
        # e_k has n-k operators, n-k+1 numbers and at most n-k-1 bracket pairs (every pair holds
        # an operator and the top-level operator has none): 4(n-k)-1 tokens, e_n one token.
        # Sum over k, plus n '=' and <eos>: 2n^2 + 2n + 2. Reached by right-nested divisions.
        n = self.size
        return 2 * n * n + 2 * n + 2

    def train_mixture(self) -> list[tuple[TaskBase, float]]:
        if not self.under:
            return []
        return [(Arithmetic(k, self.modulus, under=False, order=self.order), float(k)) for k in range(1, self.size + 1)]

    # --- generation --------------------------------------------------------------------
    def random_prompt(self, rng: np.random.Generator) -> list[str]:
        return self.build_history(rng)[-1] + ["="]

    def sample(self, rng: np.random.Generator) -> Example:
        if self.order == "leftmost":
            return super().sample(rng)
        history = self.build_history(rng)
        return Example(history[-1] + ["="], _chain(reversed(history[:-1])))

    def build_history(self, rng: np.random.Generator) -> list[list[str]]:
        """The expression after 0, 1, …, n expansions (the last one is the prompt's). The
        benchmark's chain of thought is this history reversed; ours evaluates leftmost handles."""
        py = random.Random(int(rng.integers(2**63)))  # Python's generator: ~20x cheaper per draw
        p = self.modulus
        expr: list = [py.randrange(p)]  # numbers are ints while building, operators are str
        history = [[str(expr[0])]]
        for _ in range(self.size):
            numbers = [i for i, t in enumerate(expr) if type(t) is int]
            i = numbers[py.randrange(len(numbers))]
            a, op, b = self._split(expr[i], py)
            before = expr[i - 1] if i > 0 else None
            after = expr[i + 1] if i + 1 < len(expr) else None
            bracket = before == "/" or (op in ("+", "-") and (before in ("*", "-") or after in _TIGHT))
            expr[i : i + 1] = ["(", a, op, b, ")"] if bracket else [a, op, b]
            history.append([str(t) for t in expr])
        return history

    def _split(self, x: int, py: random.Random) -> tuple[int, str, int]:
        """A random ``a op b`` with value x (mod p); a draw needing 0 as a divisor is redrawn."""
        p, inv = self.modulus, self._inverse
        while True:
            a, op = py.randrange(p), OPS[py.randrange(4)]
            if op == "+":
                return a, op, (x - a) % p
            if op == "-":
                return a, op, (a - x) % p
            if op == "*":
                if a == 0:
                    if x != 0:
                        continue
                    return a, op, py.randrange(p)
                return a, op, x * inv[a] % p
            # op == "/": a / b = x with b != 0
            if a == 0 and x == 0:
                b = py.randrange(p)
                if b == 0:
                    continue
                return a, op, b
            if a == 0 or x == 0:
                continue
            return a, op, a * inv[x] % p

    # --- reference solver --------------------------------------------------------------
    def solve(self, prompt: Sequence[str]) -> list[str]:
        if self.order == "benchmark":
            raise ValueError(
                f"{self}: a benchmark-order chain is the build history reversed, which the prompt "
                "alone does not fix; draw examples with sample()"
            )
        if not prompt or prompt[-1] != "=":
            raise ValueError(f"{self}: a prompt ends with '=', got {list(prompt[-3:])}")
        expr = [int(t) if t.isdigit() else t for t in prompt[:-1]]
        steps = []
        while len(expr) > 1:
            expr = self._step(expr)
            steps.append(expr)
        return _chain(steps)

    def _step(self, expr: list) -> list:
        """Evaluate the leftmost handle; drop a bracket pair left around a single number."""
        for i in range(1, len(expr) - 1):
            op = expr[i]
            if op not in OPS or type(expr[i - 1]) is not int or type(expr[i + 1]) is not int:
                continue
            left = expr[i - 2] if i >= 2 else None
            right = expr[i + 2] if i + 2 < len(expr) else None
            if op in _TIGHT:
                ready = left not in _TIGHT  # left-associativity: an earlier * or / goes first
            else:
                ready = left in (None, "(") and right not in _TIGHT
            if ready:
                break
        else:
            raise ValueError(f"{self}: no handle in {' '.join(map(str, expr))}")
        a, b, p = expr[i - 1], expr[i + 1], self.modulus
        if op == "+":
            value = (a + b) % p
        elif op == "-":
            value = (a - b) % p
        elif op == "*":
            value = a * b % p
        elif b == 0:
            raise ZeroDivisionError(f"{self}: division by zero in {' '.join(map(str, expr))}")
        else:
            value = a * self._inverse[b] % p
        lo, hi = i - 1, i + 2
        if left == "(" and right == ")":
            lo, hi = lo - 1, hi + 1
        return expr[:lo] + [value] + expr[hi:]

    # --- locality ----------------------------------------------------------------------
    def dependencies(self, example: Example) -> dict[int, tuple[int, ...]]:
        """Block-level (§5.2): every token of e_{k+1}, and the '=' that closes it, depends on the
        tokens of the previous block e_k."""
        tokens = example.tokens
        starts = [0] + [i + 1 for i, t in enumerate(tokens) if t == "="]
        deps: dict[int, tuple[int, ...]] = {}
        for k in range(len(starts) - 1):
            previous = tuple(range(starts[k], starts[k + 1] - 1))
            end = starts[k + 2] if k + 2 < len(starts) else len(tokens) - 1  # up to '=' / <eos>
            for pos in range(starts[k + 1], end):
                deps[pos] = previous
        return deps
