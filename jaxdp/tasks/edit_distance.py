"""ED(n) and ED_local(n): edit distance between two strings, one DP row per character (docs/paper.md §3).

Strings (the benchmark's distribution): an alphabet of 3–10 letters drawn from a–z; the first
string has n letters; the second, with probability 0.4, has an independent length uniform in
[n−3, n+2] (at least 1), else is the first after d random edits (d uniform in [1, n] per sample;
each edit is a delete, a replace or an insert at a uniform position; a delete on a string of at
most 2 letters becomes an insert). Pairs that are identical or whose second length leaves
[n−3, n+2] are redrawn. The pair is swapped so that A, the first, is the shorter.

DP (converting A into B): dp(i, j) = min(dp(i−1, j) + delete, dp(i, j−1) + insert,
dp(i−1, j−1) + replace·[a_i ≠ b_j]), with costs insert = delete = 2, replace = 3. Border
``"benchmark"`` (default): dp(i, 0) = i, dp(0, j) = j, as the benchmark sets it; border
``"costs"``: dp(i, 0) = i·delete, dp(0, j) = j·insert, the textbook border for these costs.

Formats (both share the prompt ``a_1 … a_N | b_1 … b_M <sep>``):

* ED:        ``row_1 , row_2 , … , row_N , <sep> dp(N,M) <eos>``, row_i = dp(i,1) … dp(i,M).
  dp(i, j) needs a_i and b_j from the prompt, so its locality m grows like L.
* ED_local (our format; the paper does not publish its own): row i restates the characters
  that this and later rows need, then zips B with the DP row:
  ``a_i a_{i+1} … a_N | b_1 dp(i,1) b_2 dp(i,2) … b_M dp(i,M) ,``
  Every restated character is a copy of the same character one row up (row 1: the prompt),
  and dp(i, j) reads a_i at the start of its row and b_j just before it, so every CoT token
  depends only on the last N + 2M + 3 = O(n) tokens (Definition 5.3). It costs N(N+1)/2 + NM
  more tokens than ED.

Both formats are described once, as a *layout* (`_Slot` list) from which the reference solver
renders tokens, the fast path gathers ids, and `dependencies` reads the DP structure.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import string
from collections.abc import Sequence

import numpy as np

from jaxdp.tasks.base import EOS, PAD, SEP, TASKS, TOKEN_DTYPE, EncodedBatch, Example, TaskBase

LETTERS = string.ascii_lowercase
BORDERS = ("benchmark", "costs")
LIT, CHAR_A, CHAR_B, CELL = range(4)  # slot kinds


@dataclasses.dataclass(frozen=True)
class _Slot:
    kind: int  # LIT: a fixed token; CHAR_A/CHAR_B: the x-th letter of A/B; CELL: dp(x, y)
    x: int = 0
    y: int = 0
    token: str = ""  # for LIT
    deps: tuple[int, ...] = ()  # positions this slot's value is a function of


class _EditDistanceBase(TaskBase):
    MIN_SIZE, MAX_SIZE = 1, 128
    local: bool

    def __init__(
        self,
        size: int,
        insert_cost: int = 2,
        delete_cost: int = 2,
        replace_cost: int = 3,
        border: str = "benchmark",
    ):
        super().__init__(size)
        for field, value in (
            ("insert_cost", insert_cost),
            ("delete_cost", delete_cost),
            ("replace_cost", replace_cost),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
                raise ValueError(f"{self.name}: {field} must be an integer in [0, 100], got {value!r}")
        if border not in BORDERS:
            raise ValueError(f"{self.name}: border must be one of {BORDERS}, got {border!r}")
        self.insert_cost, self.delete_cost, self.replace_cost = insert_cost, delete_cost, replace_cost
        self.border = border
        self.min_other = max(1, self.size - 3)  # length range of the second string
        self.max_other = self.size + 2
        self._finish_init()

    def options(self) -> dict:
        return {
            "insert_cost": self.insert_cost,
            "delete_cost": self.delete_cost,
            "replace_cost": self.replace_cost,
            "border": self.border,
        }

    # --- DP ------------------------------------------------------------------------------
    def _border(self, i: np.ndarray | int, j: np.ndarray | int):
        """(dp(i, 0), dp(0, j))."""
        if self.border == "benchmark":
            return i, j
        return i * self.delete_cost, j * self.insert_cost

    def max_value(self) -> int:
        """An upper bound of every DP value: the cheaper of the two border-hugging paths."""
        n, m = self.size, self.max_other
        i, j = np.meshgrid(np.arange(n + 1), np.arange(m + 1), indexing="ij")
        left, top = self._border(i, j)
        return int(np.minimum(top + i * self.delete_cost, left + j * self.insert_cost).max())

    def _vocab(self) -> list[str]:
        return [PAD, EOS, SEP, "|", ","] + list(LETTERS) + [str(v) for v in range(self.max_value() + 1)]

    def _max_len(self) -> int:
        # Lengths grow with both N and M, so the longest is N = n, M = n + 2.
        return len(self._layout(self.size, self.max_other))

    def table(self, a: Sequence, b: Sequence) -> list[list[int]]:
        """The reference DP table dp[i][j], 0 <= i <= |A|, 0 <= j <= |B| (slow twin of `_tables`)."""
        dp = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
        for i in range(len(a) + 1):
            for j in range(len(b) + 1):
                if i == 0 or j == 0:
                    left, top = self._border(i, j)
                    dp[i][j] = top if i == 0 else left
                    continue
                dp[i][j] = min(
                    dp[i - 1][j] + self.delete_cost,
                    dp[i][j - 1] + self.insert_cost,
                    dp[i - 1][j - 1] + (self.replace_cost if a[i - 1] != b[j - 1] else 0),
                )
        return dp

    def _tables(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """DP tables of a batch: a [B, N], b [B, M] letter codes (padding never matches); cells
        inside each example's own (|A|, |B|) do not depend on the padding."""
        count, n = a.shape
        m = b.shape[1]
        dp = np.empty((count, n + 1, m + 1), dtype=np.int64)
        left, top = self._border(np.arange(n + 1), np.arange(m + 1))
        dp[:, :, 0], dp[:, 0, :] = left, top
        mismatch = (a[:, :, None] != b[:, None, :]) * self.replace_cost
        for i in range(1, n + 1):
            up = dp[:, i - 1, 1:] + self.delete_cost
            diag = dp[:, i - 1, :-1] + mismatch[:, i - 1]
            best = np.minimum(up, diag)
            row = dp[:, i]
            for j in range(1, m + 1):  # the insert term chains along the row
                row[:, j] = np.minimum(best[:, j - 1], row[:, j - 1] + self.insert_cost)
        return dp

    # --- generation ----------------------------------------------------------------------
    def random_strings(self, rng: np.random.Generator) -> tuple[list[str], list[str]]:
        py = random.Random(int(rng.integers(2**63)))
        n = self.size
        edits = 1 + py.randrange(n)
        while True:
            letters = py.sample(LETTERS, 3 + py.randrange(8))
            first = [py.choice(letters) for _ in range(n)]
            if py.random() < 0.4:
                other = [py.choice(letters) for _ in range(py.randint(self.min_other, self.max_other))]
            else:
                other = first[:]
                for _ in range(edits):
                    kind = py.randrange(3)
                    if kind == 0 and len(other) > 2:
                        del other[py.randrange(len(other))]
                    elif kind == 1:
                        other[py.randrange(len(other))] = py.choice(letters)
                    else:
                        other.insert(py.randrange(len(other) + 1), py.choice(letters))
            if other != first and self.min_other <= len(other) <= self.max_other:
                return (other, first) if len(first) > len(other) else (first, other)

    def random_prompt(self, rng: np.random.Generator) -> list[str]:
        a, b = self.random_strings(rng)
        return a + ["|"] + b + [SEP]

    # --- layout and reference solver -----------------------------------------------------
    def _layout(self, n: int, m: int) -> tuple[_Slot, ...]:
        return _layout(self.local, n, m)

    def _split_prompt(self, prompt: Sequence[str]) -> tuple[list[str], list[str]]:
        prompt = list(prompt)
        if prompt.count("|") != 1 or not prompt or prompt[-1] != SEP:
            raise ValueError(f"{self}: a prompt is A | B {SEP}, got {' '.join(prompt)}")
        bar = prompt.index("|")
        return prompt[:bar], prompt[bar + 1 : -1]

    def solve(self, prompt: Sequence[str]) -> list[str]:
        a, b = self._split_prompt(prompt)
        dp = self.table(a, b)
        values = {CHAR_A: lambda s: a[s.x - 1], CHAR_B: lambda s: b[s.x - 1], CELL: lambda s: str(dp[s.x][s.y])}
        layout = self._layout(len(a), len(b))
        return [s.token if s.kind == LIT else values[s.kind](s) for s in layout[len(prompt) :]]

    def dependencies(self, example: Example) -> dict[int, tuple[int, ...]]:
        a, b = self._split_prompt(example.prompt)
        return {p: s.deps for p, s in enumerate(self._layout(len(a), len(b))) if s.deps}

    def max_locality(self) -> int:
        """The m of Definition 5.3 over every pair of lengths the generator can draw (one string
        has n letters, the other n−3 … n+2, the shorter first): exact, read off the layouts.
        `jaxdp.tasks.locality` measures the same quantity on samples (ED_local: 3n + 7)."""
        best = 0
        for other in range(self.min_other, self.max_other + 1):
            for p, slot in enumerate(self._layout(*sorted((self.size, other)))):
                if slot.deps:
                    best = max(best, p - min(slot.deps))
        return best

    # --- fast path (slow twin: `solve`) --------------------------------------------------
    def sample_arrays(self, rng: np.random.Generator, count: int) -> EncodedBatch:
        pairs = [self.random_strings(rng) for _ in range(count)]
        n, m = self.size, self.max_other
        code = {c: i for i, c in enumerate(LETTERS)}
        a = np.full((count, n), -1, dtype=np.int64)  # -1 / -2 padding never equals a letter
        b = np.full((count, m), -2, dtype=np.int64)
        la = np.array([len(p[0]) for p in pairs])
        lb = np.array([len(p[1]) for p in pairs])
        for r, (sa, sb) in enumerate(pairs):
            a[r, : len(sa)] = [code[c] for c in sa]
            b[r, : len(sb)] = [code[c] for c in sb]
        dp = self._tables(a, b).reshape(count, -1)
        letter_id, number_id = self._index["a"], self._index["0"]
        tokens = np.zeros((count, self.max_len), dtype=TOKEN_DTYPE)
        length = np.zeros(count, dtype=np.int32)
        prompt_len = (la + lb + 2).astype(np.int32)
        for shape in set(zip(la.tolist(), lb.tolist())):
            rows = np.nonzero((la == shape[0]) & (lb == shape[1]))[0]
            kind, x, y, lit = _layout_arrays(self.local, *shape)
            ids = np.where(kind == LIT, [self._index.get(t, 0) for t in lit], 0)[None, :].repeat(len(rows), 0)
            ids = ids.astype(np.int64)
            for k, source, index in (
                (CHAR_A, a, np.maximum(x - 1, 0)),
                (CHAR_B, b, np.maximum(x - 1, 0)),
                (CELL, dp, x * (m + 1) + y),
            ):
                sel = kind == k
                values = source[rows][:, index[sel]]
                ids[:, sel] = values + (letter_id if k != CELL else number_id)
            tokens[rows, : len(kind)] = ids
            length[rows] = len(kind)
        return EncodedBatch(tokens, prompt_len, length)


@functools.lru_cache(maxsize=256)
def _layout(local: bool, n: int, m: int) -> tuple[_Slot, ...]:
    """The slots of an example with |A| = n, |B| = m, each with the positions it depends on."""
    slots: list[_Slot] = []

    def put(slot: _Slot) -> int:
        slots.append(slot)
        return len(slots) - 1

    pos_a = {i: put(_Slot(CHAR_A, i)) for i in range(1, n + 1)}
    put(_Slot(LIT, token="|"))
    pos_b = {j: put(_Slot(CHAR_B, j)) for j in range(1, m + 1)}
    put(_Slot(LIT, token=SEP))
    cell: dict[tuple[int, int], int] = {}
    for i in range(1, n + 1):
        if local:  # restate a_i … a_n, each a copy of the same letter one row up
            pos_a = {k: put(_Slot(CHAR_A, k, deps=(pos_a[k],))) for k in range(i, n + 1)}
            put(_Slot(LIT, token="|"))
        for j in range(1, m + 1):
            if local:
                pos_b[j] = put(_Slot(CHAR_B, j, deps=(pos_b[j],)))
            neighbours = [cell[ij] for ij in ((i - 1, j - 1), (i - 1, j), (i, j - 1)) if ij in cell]
            cell[i, j] = put(_Slot(CELL, i, j, deps=tuple(sorted([pos_a[i], pos_b[j], *neighbours]))))
        put(_Slot(LIT, token=","))
    put(_Slot(LIT, token=SEP))
    put(_Slot(CELL, n, m, deps=(cell[n, m],)))  # the answer restates dp(N, M)
    put(_Slot(LIT, token=EOS))
    return tuple(slots)


@functools.lru_cache(maxsize=256)
def _layout_arrays(local: bool, n: int, m: int):
    slots = _layout(local, n, m)
    return (
        np.array([s.kind for s in slots]),
        np.array([s.x for s in slots]),
        np.array([s.y for s in slots]),
        tuple(s.token for s in slots),
    )


@TASKS.register("ed")
class EditDistance(_EditDistanceBase):
    """ED(n): the benchmark's format."""

    name = "ed"
    local = False
    PAPER_SIZES, PAPER_MAX_LENGTHS = (6, 12, 16, 20), (72, 210, 342, 506)  # L: our bound exactly


@TASKS.register("ed_local")
class EditDistanceLocal(_EditDistanceBase):
    """ED_local(n): the same problem in a format with locality m = O(n) (module docstring)."""

    name = "ed_local"
    local = True
    MAX_SIZE = 96
    # L read off Figure 2's axis: they belong to the paper's unpublished format, not ours
    PAPER_SIZES, PAPER_MAX_LENGTHS = (6, 12, 16, 20), (66, 198, 326, 486)
