"""Softmax machinery shared by the softmax mixers (standard, sparse, window): scaled scores,
masked softmax in at least float32, block layouts for the blocked forms, and one decode query
against a set of cached keys."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxdp.models.mixers.base import Array, ProbsFn


def softmax_dtype(dtype) -> jnp.dtype:
    """Scores and probabilities are kept in at least float32 (bfloat16 softmax is too coarse)."""
    return jnp.promote_types(dtype, jnp.float32)


def masked_softmax(scores: Array, mask, probs_fn: ProbsFn, out_dtype) -> Array:
    scores = jnp.where(mask, scores.astype(softmax_dtype(scores.dtype)), -jnp.inf)
    probs = jax.nn.softmax(scores, axis=-1)
    if probs_fn is not None:
        probs = probs_fn(probs)
    return probs.astype(out_dtype)


def heads_first(x_BxLxHxK: Array) -> Array:
    """[B, H, L, K]: the layout XLA's batched matmuls run fastest in (heads as a batch axis next
    to the batch; on a CPU faster than contracting the [B, L, H, K] layout directly)."""
    return jnp.swapaxes(x_BxLxHxK, 1, 2)


def scores(q_BxLxHxK: Array, k_BxSxHxK: Array) -> Array:
    """s_BxHxLxS = q·k / sqrt(K), eq. (4)."""
    scale = 1.0 / np.sqrt(q_BxLxHxK.shape[-1])
    return jnp.einsum("bhlk,bhsk->bhls", heads_first(q_BxLxHxK * scale), heads_first(k_BxSxHxK))


def masked_softmax_attention(q, k, v, mask_LxS, probs_fn: ProbsFn = None) -> Array:
    """Softmax attention under an arbitrary boolean mask (every row must keep one key)."""
    probs_BxHxLxS = masked_softmax(scores(q, k), mask_LxS, probs_fn, v.dtype)
    return jnp.swapaxes(jnp.einsum("bhls,bhsk->bhlk", probs_BxHxLxS, heads_first(v)), 1, 2)


def softmax_weights(q, k, mask_LxS) -> Array:
    """probs_BxHxLxS: the softmax attention matrix of eq. (4) under `mask_LxS`, for drawing and
    inspecting; the kernels apply it as ``probs @ v``."""
    return masked_softmax(scores(q, k), mask_LxS, None, softmax_dtype(q.dtype))


def pad_length(x_BxLxHxK: Array, length: int, front: int = 0) -> Array:
    back = length - front - x_BxLxHxK.shape[1]
    return jnp.pad(x_BxLxHxK, ((0, 0), (front, back), (0, 0), (0, 0)))


def local_blocks(q, k, v, B: int, before: int):
    """The blocked layout of a banded softmax: queries in blocks of B, and for query block b the
    key and value blocks b-before .. b side by side. Returns (qb [Bt, nb, B, H, K] scaled by
    1/sqrt(K), k_local, v_local [Bt, nb, (before+1)B, H, K], key positions [nb, (before+1)B],
    query positions [nb, B]); positions before 0 are padding."""
    Bt, L, H, K = q.shape
    nb = -(-L // B)
    qb = pad_length(q, nb * B).reshape(Bt, nb, B, H, K) * (1.0 / np.sqrt(K))
    kp = pad_length(k, (nb + before) * B, front=before * B).reshape(Bt, nb + before, B, H, K)
    vp = pad_length(v, (nb + before) * B, front=before * B).reshape(Bt, nb + before, B, H, v.shape[-1])
    k_local = jnp.concatenate([kp[:, j : j + nb] for j in range(before + 1)], axis=2)
    v_local = jnp.concatenate([vp[:, j : j + nb] for j in range(before + 1)], axis=2)
    qpos = np.arange(nb)[:, None] * B + np.arange(B)[None, :]
    kpos = (np.arange(nb)[:, None] - before) * B + np.arange((before + 1) * B)[None, :]
    return qb, kp, vp, k_local, v_local, kpos, qpos


def attend_one(q_BxHxK, k_BxSxHxK, v_BxSxHxK, keep_S) -> Array:
    """One decode query against S cached keys, `keep_S` saying which of them it may see."""
    return attend_one_heads_first(q_BxHxK, heads_first(k_BxSxHxK), heads_first(v_BxSxHxK), keep_S)


def attend_one_heads_first(q_BxHxK, k_BxHxSxK, v_BxHxSxK, keep_S) -> Array:
    """`attend_one` with the cache laid out heads first ([B, H, S, K]), as the KV cache keeps it."""
    s = jnp.einsum("bhk,bhsk->bhs", q_BxHxK * (1.0 / np.sqrt(q_BxHxK.shape[-1])), k_BxHxSxK)
    probs = masked_softmax(s, keep_S, None, v_BxHxSxK.dtype)
    return jnp.einsum("bhs,bhsk->bhk", probs, v_BxHxSxK)


def ring_step(ring_k, ring_v, k_BxHxK, v_BxHxK, pos):
    """Write position `pos` into slot pos mod R of a ring of R slots; returns the ring and the
    position each slot now holds (negative: empty)."""
    R = ring_k.shape[1]
    slot = pos % R
    ring_k, ring_v = ring_k.at[:, slot].set(k_BxHxK), ring_v.at[:, slot].set(v_BxHxK)
    return ring_k, ring_v, pos - (pos - jnp.arange(R)) % R


def ring_prefill(ring_k, ring_v, k, v):
    """A ring after a prompt: its last R positions, each in slot position mod R."""
    R, P = ring_k.shape[1], k.shape[1]
    recent = np.arange(max(0, P - R), P)
    return ring_k.at[:, recent % R].set(k[:, recent]), ring_v.at[:, recent % R].set(v[:, recent])
