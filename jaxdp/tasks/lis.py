"""LIS(N): longest strictly increasing subsequence, with one DP value per input (docs/paper.md §3).

Sequence: ``a_1 … a_N <sep> dp_1 … dp_N <sep> max(dp) <eos>``, where dp_i is the length of the
longest strictly increasing subsequence ending at a_i (eq. (9) with h = all earlier states).

Inputs (the benchmark's distribution): 1–3 planted increasing runs of total length t uniform in
[3, N] are written, in order, at t random positions; every other input is uniform. Run lengths:
one run t; two runs (r, t−r) with r uniform in [1, ⌊t/2⌋+1]; three runs (r1, r2, t−r1−r2) with r1
uniform in [1, ⌊t/3⌋+1], r2 uniform in [1, ⌊(t−r1)/2⌋+1]. Each run takes distinct values, sorted.
Values lie in [N+1, N+`value_range`] so they never share a token with the DP values 1..N. The
default, 149 values, is the benchmark's: its generator draws from [N+1, number_range) and its
training commands set number_range = N + 150 (200, 230, 250 at N = 50, 80, 100). A run longer
than `value_range` cannot be strictly increasing, so such draws are redrawn (only possible for
N > value_range, beyond the benchmark's sizes).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jaxdp.tasks.base import EOS, PAD, SEP, TASKS, TOKEN_DTYPE, EncodedBatch, Example, TaskBase


@TASKS.register("lis")
class LIS(TaskBase):
    name = "lis"
    MIN_SIZE, MAX_SIZE = 3, 4096
    PAPER_SIZES, PAPER_MAX_LENGTHS = (40, 110, 175, 250), (83, 223, 353, 503)  # L: our bound exactly

    def __init__(self, size: int, value_range: int = 149):
        super().__init__(size)
        if not isinstance(value_range, int) or not 3 <= value_range <= 60000:
            raise ValueError(f"lis: value_range must be an integer in [3, 60000], got {value_range!r}")
        self.value_range = value_range
        self._finish_init()

    def options(self) -> dict:
        return {"value_range": self.value_range}

    def _vocab(self) -> list[str]:
        return [PAD, EOS, SEP] + [str(v) for v in range(1, self.size + self.value_range + 1)]

    def _max_len(self) -> int:
        return 2 * self.size + 4  # every example has this length; the paper's 2N+3 plus <eos>

    # --- generation (vectorised; `random_prompt` is the same code with one row) ----------
    def random_inputs(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """[count, N] input values, drawn as described in the module docstring. A row whose
        planted runs cannot fit the value range (only when N > value_range) is drawn again, after
        the whole pass: pass after pass on the rows left."""
        seq = np.empty((count, self.size), np.int64)
        rows = np.arange(count)
        while len(rows):
            values, kept = self._draw_pass(rng, len(rows))
            seq[rows[kept]] = values
            rows = rows[~kept]
        return seq + self.size + 1

    def _draw_pass(self, rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
        """One pass of `random_inputs` over `count` rows: which rows it keeps, and their values
        in [0, value_range). Every row's numbers are drawn (the stream does not depend on which
        are kept); only the kept rows are computed."""
        n, v = self.size, self.value_range
        runs = rng.integers(1, 4, count)
        total = rng.integers(3, n + 1, count)
        r = rng.integers(1, total // 2 + 2)
        r1 = rng.integers(1, total // 3 + 2)
        r2 = rng.integers(1, (total - r1) // 2 + 2)
        sizes = np.zeros((count, 3), dtype=np.int64)
        sizes[:, 0] = np.select([runs == 1, runs == 2], [total, r], r1)
        sizes[:, 1] = np.select([runs == 1, runs == 2], [0, total - r], r2)
        sizes[:, 2] = np.where(runs == 3, total - r1 - r2, 0)
        kept = ~(sizes > v).any(axis=1)  # a run longer than the value range cannot increase strictly
        width = min(v, n)  # a run holds at most min(v, N) values: only these columns are kept
        run_values = _run_values(rng, sizes, kept, v, width)
        sizes, total, m = sizes[kept], total[kept], int(kept.sum())
        k = np.arange(n)
        ends = np.cumsum(sizes, axis=1)
        run_of_k = (k >= ends[:, :1]).astype(np.int64) + (k >= ends[:, 1:2])
        offset = np.take_along_axis(np.concatenate([np.zeros((m, 1), np.int64), ends[:, :2]], 1), run_of_k, 1)
        planted = np.take_along_axis(
            run_values.reshape(m, 3 * width), run_of_k * width + np.minimum(k - offset, width - 1), 1
        )
        # Positions: `total` distinct positions in increasing order.
        places = np.argsort(rng.random((count, n))[kept], axis=-1)
        places = np.sort(np.where(k < total[:, None], places, n), axis=-1)
        seq = rng.integers(0, v, (count, n))[kept]
        rows, ks = np.nonzero(k < total[:, None])
        seq[rows, places[rows, ks]] = planted[rows, ks]
        return seq, kept

    def random_prompt(self, rng: np.random.Generator) -> list[str]:
        return [str(a) for a in self.random_inputs(rng, 1)[0]] + [SEP]

    # --- reference solver --------------------------------------------------------------
    def solve(self, prompt: Sequence[str]) -> list[str]:
        if len(prompt) != self.size + 1 or prompt[-1] != SEP:
            raise ValueError(f"{self}: a prompt is {self.size} numbers then {SEP}")
        a = [int(t) for t in prompt[:-1]]
        dp = []
        for i, x in enumerate(a):
            dp.append(1 + max([dp[j] for j in range(i) if a[j] < x], default=0))
        return [str(d) for d in dp] + [SEP, str(max(dp)), EOS]

    # --- fast path (slow twin: `solve`) ------------------------------------------------
    def sample_arrays(self, rng: np.random.Generator, count: int) -> EncodedBatch:
        a = self.random_inputs(rng, count)
        dp = lis_lengths(a)
        n, one = self.size, self._index["1"]  # numbers v have consecutive ids one + v - 1
        tokens = np.empty((count, 2 * n + 4), dtype=TOKEN_DTYPE)
        tokens[:, :n] = a - 1 + one
        tokens[:, n] = tokens[:, 2 * n + 1] = self._index[SEP]
        tokens[:, n + 1 : 2 * n + 1] = dp - 1 + one
        tokens[:, 2 * n + 2] = dp.max(axis=1) - 1 + one
        tokens[:, 2 * n + 3] = self._index[EOS]
        full = lambda x: np.full(count, x, dtype=np.int32)  # noqa: E731
        return EncodedBatch(tokens, full(n + 1), full(2 * n + 4))

    # --- locality ----------------------------------------------------------------------
    def dependencies(self, example: Example) -> dict[int, tuple[int, ...]]:
        """dp_i depends on a_1..a_i and dp_1..dp_{i-1}; the answer on dp_1..dp_N."""
        n = self.size
        dp_pos = [n + 1 + i for i in range(n)]
        deps = {dp_pos[i]: tuple(range(i + 1)) + tuple(dp_pos[:i]) for i in range(n)}
        deps[2 * n + 2] = tuple(dp_pos)
        return deps


def _run_values(rng: np.random.Generator, sizes: np.ndarray, kept: np.ndarray, v: int, width: int) -> np.ndarray:
    """[kept rows, 3, width]: run j of a kept row b takes the first sizes[b, j] entries of a
    random permutation of range(v), sorted (then v, unused). The uniforms of every row are drawn,
    in blocks of rows (the same stream as one draw), so a large value range needs about 32 MB at
    a time."""
    out = []
    block = max(1, 2**22 // (3 * v))
    for start in range(0, len(sizes), block):
        keep = kept[start : start + block]
        uniforms = rng.random((len(keep), 3, v))[keep]
        perm = np.where(np.arange(v) < sizes[start : start + block][keep][..., None], np.argsort(uniforms, axis=-1), v)
        out.append(np.sort(perm, axis=-1)[..., :width].copy())  # a copy: the view would keep the block
    return np.concatenate(out) if out else np.zeros((0, 3, width), np.int64)


def lis_lengths(a: np.ndarray) -> np.ndarray:
    """dp[b, i] = length of the longest strictly increasing subsequence of a[b] ending at i.

    Patience sorting, vectorised over rows: ``tails[b, k]`` is the smallest last value of an
    increasing subsequence of length k+1 so far, so dp_i = 1 + #{k : tails[k] < a_i}, found by
    a binary search of fixed depth. O(B·N·log N).
    """
    count, n = a.shape
    rows = np.arange(count)
    tails = np.full((count, n + 1), np.iinfo(np.int64).max, dtype=np.int64)
    dp = np.empty((count, n), dtype=np.int64)
    steps = int(np.ceil(np.log2(n + 1))) + 1
    for i in range(n):
        x = a[:, i]
        lo, hi = np.zeros(count, np.int64), np.full(count, n, np.int64)
        for _ in range(steps):
            mid = (lo + hi) // 2
            right = tails[rows, mid] < x
            lo, hi = np.where(right, mid + 1, lo), np.where(right, hi, mid)
        dp[:, i] = lo + 1
        tails[rows, lo] = x
    return dp
