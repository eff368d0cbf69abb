"""Slow, independent twins of the attention kernels, written from the paper's formulas with
1-indexed positions and explicit loops over positions (numpy, float64)."""

from __future__ import annotations

import numpy as np


def eq6_set(i: int, B: int, k: int, c: int) -> set[int]:
    """I_i of eq. (6) for 1-indexed query i: {j <= i : i - kB < j} ∪ {j <= i : (j-1) mod B >= B-c}."""
    return {j for j in range(1, i + 1) if i - k * B < j or (j - 1) % B >= B - c}


def softmax_attention(q, k, v, keys_of) -> np.ndarray:
    """o_i = sum_{j in keys_of(i)} softmax_j(q_i·k_j / sqrt(K)) v_j, per batch row and head;
    `keys_of(i)` gives 1-indexed key positions for 1-indexed query i."""
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    Bt, L, H, K = q.shape
    out = np.zeros_like(q)
    for b in range(Bt):
        for h in range(H):
            for i in range(1, L + 1):
                js = sorted(keys_of(i))
                s = np.array([q[b, i - 1, h] @ k[b, j - 1, h] for j in js]) / np.sqrt(K)
                w = np.exp(s - s.max())
                w /= w.sum()
                out[b, i - 1, h] = sum(wj * v[b, j - 1, h] for wj, j in zip(w, js))
    return out


def linear_attention(q, k, v) -> np.ndarray:
    """eq. (8): o_i = phi(q_i)^T S_i / phi(q_i)^T z_i with S_i = sum_{j<=i} phi(k_j) v_j^T and
    z_i = sum_{j<=i} phi(k_j), phi = elu + 1."""
    phi = lambda x: np.where(x > 0, x + 1.0, np.exp(x))  # noqa: E731  (elu(x) + 1)
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    Bt, L, H, K = q.shape
    out = np.zeros_like(v)
    for b in range(Bt):
        for h in range(H):
            S = np.zeros((K, v.shape[-1]))
            z = np.zeros(K)
            for i in range(L):
                S += np.outer(phi(k[b, i, h]), v[b, i, h])
                z += phi(k[b, i, h])
                out[b, i, h] = phi(q[b, i, h]) @ S / (phi(q[b, i, h]) @ z)
    return out
