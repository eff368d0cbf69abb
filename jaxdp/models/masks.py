"""The sparse attention pattern of eq. (6) and the causal mask.

The paper indexes positions from 1:

    I_i = { j <= i : i - kB < j } ∪ { j <= i : (j - 1) mod B >= B - c }.

With 0-indexed positions p = i - 1 and q = j - 1 this reads

    q <= p  and  ( p - q < kB  or  q mod B >= B - c ),

a local window of the last kB positions (itself included) plus the last c positions of every
block (the "summary" or global tokens), all causal.

>>> sparse_mask(6, 2, 1, 1).astype(int)
array([[1, 0, 0, 0, 0, 0],
       [1, 1, 0, 0, 0, 0],
       [0, 1, 1, 0, 0, 0],
       [0, 1, 1, 1, 0, 0],
       [0, 1, 0, 1, 1, 0],
       [0, 1, 0, 1, 1, 1]])
"""

from __future__ import annotations

import math

import numpy as np


def default_block_size(max_len: int) -> int:
    """B = 2^floor(log2 sqrt(L)) (§6.1), with L = `max_len`: eq. (6)'s block size unless set."""
    return 2 ** int(math.floor(math.log2(math.sqrt(max_len))))


def causal_mask(L: int) -> np.ndarray:
    """bool[L, L]: query p may see key q iff q <= p."""
    return np.tril(np.ones((L, L), dtype=bool))


def is_summary(q: np.ndarray, B: int, c: int) -> np.ndarray:
    """Whether 0-indexed position q is one of the last c positions of its block of B."""
    return q % B >= B - c


def sparse_mask(L: int, B: int, k: int, c: int) -> np.ndarray:
    """bool[L, L], eq. (6) in 0-indexed form: entry [p, q] says whether query p attends to key q."""
    if min(L, B, k) < 1 or not 0 <= c <= B:
        raise ValueError(f"sparse_mask needs L, B, k >= 1 and 0 <= c <= B; got L={L}, B={B}, k={k}, c={c}")
    p = np.arange(L)[:, None]
    q = np.arange(L)[None, :]
    return (q <= p) & ((p - q < k * B) | is_summary(q, B, c))
