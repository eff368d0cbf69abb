"""The three ways of mixing values (SPEC §1), as pure functions, with their decode states.

Every kernel takes per-head queries, keys and values `q_BxLxHxK` (batch, length, heads, head
size) and returns the mixed values `o_BxLxHxK`; nothing else in the model depends on the kernel.

* standard: causal softmax attention, eq. (3)-(4), scale 1/sqrt(K).
* sparse: softmax restricted to the set I_i of eq. (6) (see `masks.py`).
  `sparse_masked` (reference: dense scores, boolean mask) and `sparse_blocked` (only the kept
  blocks: k+1 local key blocks plus one column per summary token, O(L·sqrt(L)·D) for B ~ sqrt(L)).
* linear: eq. (7)-(8) with phi(x) = elu(x) + 1 (Katharopoulos et al. 2020).
  `linear_quadratic` (reference: the L x L matrix phi(Q) phi(K)^T, causally masked),
  `linear_chunked` (chunkwise-parallel: quadratic inside a chunk, the running state (S, z)
  between chunks) and `linear_scan` (the recurrence of Lemma A.8 with `jax.lax.scan`).

Decode states are explicit pytrees, one per layer: `KVCache` (standard), `SparseCache` (a ring of
the last kB keys plus one slot per summary token, so a step reads kB + c·L/B keys, not L) and
`LinearState` (S, z: O(1) work per token). `*_prefill` fills a fresh state from a prompt's keys
and values; `*_step` attends one new token at position `pos` and returns the updated state.

`probs_fn` (standard and sparse only) is applied to the attention probabilities; the model passes
its attention dropout there. The linear kernels have no probabilities to drop.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxdp.models.masks import causal_mask, is_summary, sparse_mask

Array = jax.Array
ProbsFn = Callable[[Array], Array] | None


def _softmax_dtype(dtype) -> jnp.dtype:
    """Scores and probabilities are kept in at least float32 (bfloat16 softmax is too coarse)."""
    return jnp.promote_types(dtype, jnp.float32)


def _masked_softmax(scores: Array, mask, probs_fn: ProbsFn, out_dtype) -> Array:
    scores = jnp.where(mask, scores.astype(_softmax_dtype(scores.dtype)), -jnp.inf)
    probs = jax.nn.softmax(scores, axis=-1)
    if probs_fn is not None:
        probs = probs_fn(probs)
    return probs.astype(out_dtype)


def _scores(q_BxLxHxK: Array, k_BxSxHxK: Array) -> Array:
    scale = 1.0 / np.sqrt(q_BxLxHxK.shape[-1])
    return jnp.einsum("blhk,bshk->bhls", q_BxLxHxK * scale, k_BxSxHxK)


# ----------------------------------------------------------------------------------- standard


def masked_softmax_attention(q, k, v, mask_LxS, probs_fn: ProbsFn = None) -> Array:
    """Softmax attention under an arbitrary boolean mask (every row must keep one key)."""
    probs_BxHxLxS = _masked_softmax(_scores(q, k), mask_LxS, probs_fn, v.dtype)
    return jnp.einsum("bhls,bshk->blhk", probs_BxHxLxS, v)


def softmax_weights(q, k, mask_LxS) -> Array:
    """probs_BxHxLxS: the softmax attention matrix of eq. (4) under `mask_LxS` (standard: causal;
    sparse: eq. (6)), for drawing and inspecting; the kernels apply it as ``probs @ v``."""
    return _masked_softmax(_scores(q, k), mask_LxS, None, _softmax_dtype(q.dtype))


def standard(q, k, v, probs_fn: ProbsFn = None) -> Array:
    """Causal softmax attention, eq. (3)-(4)."""
    return masked_softmax_attention(q, k, v, causal_mask(q.shape[1]), probs_fn)


# ------------------------------------------------------------------------------------- sparse


def sparse_masked(q, k, v, *, block_size: int, local_blocks: int, global_tokens: int,
                  probs_fn: ProbsFn = None) -> Array:  # fmt: skip
    """Reference sparse attention: full L x L scores under the eq. (6) mask."""
    mask = sparse_mask(q.shape[1], block_size, local_blocks, global_tokens)
    return masked_softmax_attention(q, k, v, mask, probs_fn)


def _pad_length(x_BxLxHxK: Array, length: int, front: int = 0) -> Array:
    back = length - front - x_BxLxHxK.shape[1]
    return jnp.pad(x_BxLxHxK, ((0, 0), (front, back), (0, 0), (0, 0)))


def _blocked_masks(L: int, B: int, k: int, c: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Static masks of the blocked form: local [nb, B, (k+1)B] and global [nb, nb·c] (or None
    when no query block can see a summary token outside its local window)."""
    nb = -(-L // B)
    qpos = np.arange(nb)[:, None, None] * B + np.arange(B)[None, :, None]
    kpos = (np.arange(nb)[:, None, None] - k) * B + np.arange((k + 1) * B)[None, None, :]
    local = (kpos >= 0) & (kpos <= qpos) & ((qpos - kpos < k * B) | is_summary(kpos, B, c))
    if c == 0 or nb < k + 2:
        return local, None
    summary_block = np.repeat(np.arange(nb), c)
    # Summary tokens of blocks b' <= b - k - 1 lie outside query block b's local window.
    glob = summary_block[None, :] <= np.arange(nb)[:, None] - k - 1
    return local, glob


def sparse_blocked(q, k, v, *, block_size: int, local_blocks: int, global_tokens: int,
                   probs_fn: ProbsFn = None) -> Array:  # fmt: skip
    """Sparse attention computing only the kept blocks.

    Query block b (positions bB .. bB+B-1) scores against (i) its k+1 local key blocks b-k .. b,
    masked to the window p - q < kB plus summary tokens, and (ii) the summary tokens of blocks
    0 .. b-k-1, which lie wholly outside the window, so no key is counted twice. Both score sets
    share one softmax. Cost per head: L·((k+1)B + c·L/B)·K multiply-adds for scores and as many
    for the mix.
    """
    Bt, L, H, K = q.shape
    B, kb, c = block_size, local_blocks, global_tokens
    nb = -(-L // B)
    local_mask, global_mask = _blocked_masks(L, B, kb, c)
    qb = _pad_length(q, nb * B).reshape(Bt, nb, B, H, K) * (1.0 / np.sqrt(K))
    kp = _pad_length(k, (nb + kb) * B, front=kb * B).reshape(Bt, nb + kb, B, H, K)
    vp = _pad_length(v, (nb + kb) * B, front=kb * B).reshape(Bt, nb + kb, B, H, K)
    # Local key blocks of query block b are padded blocks b .. b+k (original b-k .. b).
    k_local = jnp.concatenate([kp[:, j:j + nb] for j in range(kb + 1)], axis=2)
    v_local = jnp.concatenate([vp[:, j:j + nb] for j in range(kb + 1)], axis=2)
    s_local = jnp.einsum("bnqhk,bnshk->bnhqs", qb, k_local)
    mask = local_mask[None, :, None]
    scores = [s_local]
    if global_mask is not None:
        # the last c slots of the original blocks 0 .. nb-1 (padded blocks kb .. kb+nb-1)
        k_glob = kp[:, kb:, B - c:].reshape(Bt, nb * c, H, K)
        v_glob = vp[:, kb:, B - c:].reshape(Bt, nb * c, H, K)
        scores.append(jnp.einsum("bnqhk,bghk->bnhqg", qb, k_glob))
        gmask = np.broadcast_to(global_mask[:, None, None, :], (nb, 1, B, nb * c))
        mask = np.concatenate([np.broadcast_to(mask, (1, nb, 1, B, (kb + 1) * B)),
                               gmask[None]], axis=-1)  # fmt: skip
    probs = _masked_softmax(jnp.concatenate(scores, axis=-1), mask, probs_fn, v.dtype)
    n_local = (kb + 1) * B
    out = jnp.einsum("bnhqs,bnshk->bnqhk", probs[..., :n_local], v_local)
    if global_mask is not None:
        out = out + jnp.einsum("bnhqg,bghk->bnqhk", probs[..., n_local:], v_glob)
    return out.reshape(Bt, nb * B, H, K)[:, :L]


# ------------------------------------------------------------------------------------- linear


def feature_map(x: Array) -> Array:
    """phi(x) = elu(x) + 1 (Katharopoulos et al. 2020), written as x + 1 for x > 0 and exp(x)
    otherwise: the literal `elu(x) + 1` rounds to 0 in float32 once x < -17 (exp(x) - 1 == -1),
    which can leave a 0/0 in eq. (8); this form stays positive."""
    return jnp.where(x > 0, x + 1.0, jnp.exp(jnp.minimum(x, 0.0)))


def _linear_scores(q, k) -> Array:
    """a_BxHxLxS = φ(q_i)·φ(k_j) for j ≤ i, else 0."""
    return jnp.einsum("blhk,bshk->bhls", feature_map(q), feature_map(k)) * causal_mask(q.shape[1])


def linear_quadratic(q, k, v) -> Array:
    """Reference linear attention, eq. (8) as one masked L x L product:
    o_i = sum_{j<=i} (phi(q_i)·phi(k_j)) v_j / sum_{j<=i} phi(q_i)·phi(k_j)."""
    a_BxHxLxS = _linear_scores(q, k)
    num = jnp.einsum("bhls,bshk->blhk", a_BxHxLxS, v)
    den_BxLxH = jnp.einsum("bhls->blh", a_BxHxLxS)
    return num / den_BxLxH[..., None]


def linear_weights(q, k) -> Array:
    """weights_BxHxLxS: eq. (8)'s normalised φ(q_i)·φ(k_j) / Σ_{j'≤i} φ(q_i)·φ(k_j'), j ≤ i; every
    linear form computes ``weights @ v`` without building this matrix (for inspection only)."""
    a_BxHxLxS = _linear_scores(q, k)
    return a_BxHxLxS / a_BxHxLxS.sum(-1, keepdims=True)


def linear_chunked(q, k, v, *, chunk_size: int) -> Array:
    """Chunkwise-parallel linear attention: within a chunk of C positions the masked quadratic
    form, across chunks the state (S, z) summed over all earlier chunks. O(L·C·K + L·K²) per head."""
    Bt, L, H, K = q.shape
    C = chunk_size
    n = -(-L // C)
    # Pad before phi: padded queries then get phi = 1 and a positive denominator (a zero one
    # would be sliced off in the forward pass but put 0 * inf = NaN into the gradient).
    fq = feature_map(_pad_length(q, n * C)).reshape(Bt, n, C, H, K)
    fk = feature_map(_pad_length(k, n * C)).reshape(Bt, n, C, H, K)
    vc = _pad_length(v, n * C).reshape(Bt, n, C, H, v.shape[-1])
    # State entering chunk t: sums over chunks 0 .. t-1 (exclusive prefix sums).
    s_chunk = jnp.einsum("bnchk,bnchv->bnhkv", fk, vc)
    z_chunk = jnp.einsum("bnchk->bnhk", fk)
    s_prev = jnp.cumsum(s_chunk, axis=1) - s_chunk
    z_prev = jnp.cumsum(z_chunk, axis=1) - z_chunk
    a = jnp.einsum("bnchk,bndhk->bnhcd", fq, fk) * causal_mask(C)
    num = jnp.einsum("bnchk,bnhkv->bnchv", fq, s_prev) + jnp.einsum("bnhcd,bndhv->bnchv", a, vc)
    den = jnp.einsum("bnchk,bnhk->bnch", fq, z_prev) + jnp.einsum("bnhcd->bnch", a)
    out = num / den[..., None]
    return out.reshape(Bt, n * C, H, v.shape[-1])[:, :L]


class LinearState(NamedTuple):
    """Lemma A.8's running sums per head: S = sum_j phi(k_j) v_j^T and z = sum_j phi(k_j)."""

    S_BxHxKxK: Array
    z_BxHxK: Array


def _linear_readout(fq_BxHxK, state: LinearState) -> Array:
    num = jnp.einsum("bhk,bhkv->bhv", fq_BxHxK, state.S_BxHxKxK)
    den = jnp.einsum("bhk,bhk->bh", fq_BxHxK, state.z_BxHxK)
    return num / den[..., None]


def _linear_update(state: LinearState, fk_BxHxK, v_BxHxK) -> LinearState:
    return LinearState(state.S_BxHxKxK + jnp.einsum("bhk,bhv->bhkv", fk_BxHxK, v_BxHxK),
                       state.z_BxHxK + fk_BxHxK)  # fmt: skip


def linear_init(batch: int, num_heads: int, head_dim: int, dtype) -> LinearState:
    return LinearState(jnp.zeros((batch, num_heads, head_dim, head_dim), dtype),
                       jnp.zeros((batch, num_heads, head_dim), dtype))  # fmt: skip


def linear_scan(q, k, v, state: LinearState | None = None) -> Array:
    """The recurrence of Lemma A.8 (`lax.scan` over positions): S_i = S_{i-1} + phi(k_i) v_i^T,
    z_i = z_{i-1} + phi(k_i), o_i = phi(q_i)^T S_i / phi(q_i)^T z_i."""
    return linear_scan_with_state(q, k, v, state)[0]


def linear_scan_with_state(q, k, v, state: LinearState | None = None) -> tuple[Array, LinearState]:
    Bt, L, H, K = q.shape
    if state is None:
        state = linear_init(Bt, H, K, v.dtype)

    def step(carry, qkv):
        q_i, k_i, v_i = qkv
        carry = _linear_update(carry, feature_map(k_i), v_i)
        return carry, _linear_readout(feature_map(q_i), carry)

    time_major = [jnp.moveaxis(x, 1, 0) for x in (q, k, v)]
    state, out_LxBxHxK = jax.lax.scan(step, state, time_major)
    return jnp.moveaxis(out_LxBxHxK, 0, 1), state


def linear_prefill(state: LinearState, k, v) -> LinearState:
    """State after a prompt: the sums of Lemma A.8 over all its positions."""
    fk = feature_map(k)
    return LinearState(state.S_BxHxKxK + jnp.einsum("blhk,blhv->bhkv", fk, v),
                       state.z_BxHxK + jnp.einsum("blhk->bhk", fk))  # fmt: skip


def linear_step(state: LinearState, q_BxHxK, k_BxHxK, v_BxHxK) -> tuple[Array, LinearState]:
    state = _linear_update(state, feature_map(k_BxHxK), v_BxHxK)
    return _linear_readout(feature_map(q_BxHxK), state), state


# ------------------------------------------------------------------------- softmax decode states


class KVCache(NamedTuple):
    """Keys and values of positions 0 .. max_len-1 (standard attention)."""

    k_BxTxHxK: Array
    v_BxTxHxK: Array


def kv_init(batch: int, max_len: int, num_heads: int, head_dim: int, dtype) -> KVCache:
    shape = (batch, max_len, num_heads, head_dim)
    return KVCache(jnp.zeros(shape, dtype), jnp.zeros(shape, dtype))


def kv_prefill(cache: KVCache, k, v) -> KVCache:
    return KVCache(cache.k_BxTxHxK.at[:, :k.shape[1]].set(k), cache.v_BxTxHxK.at[:, :v.shape[1]].set(v))


def _attend_one(q_BxHxK, k_BxSxHxK, v_BxSxHxK, keep_S) -> Array:
    scores = _scores(q_BxHxK[:, None], k_BxSxHxK)[:, :, 0]  # [B, H, S]
    probs = _masked_softmax(scores, keep_S, None, v_BxSxHxK.dtype)
    return jnp.einsum("bhs,bshk->bhk", probs, v_BxSxHxK)


def kv_step(cache: KVCache, q_BxHxK, k_BxHxK, v_BxHxK, pos) -> tuple[Array, KVCache]:
    """Attend position `pos` to positions 0 .. pos of the cache (O(max_len) work)."""
    cache = KVCache(cache.k_BxTxHxK.at[:, pos].set(k_BxHxK), cache.v_BxTxHxK.at[:, pos].set(v_BxHxK))
    keep = jnp.arange(cache.k_BxTxHxK.shape[1]) <= pos
    return _attend_one(q_BxHxK, *cache, keep), cache


class SparseCache(NamedTuple):
    """The keys eq. (6) can still use: a ring of the last kB positions (slot q mod kB) and one
    slot per summary token (slot (q // B)·c + q mod B - (B - c)). A step reads kB + c·ceil(T/B)
    keys, O(B + L/B) instead of O(L)."""

    local_k: Array  # [B, kB, H, K]
    local_v: Array
    summary_k: Array  # [B, c·ceil(T/B), H, K]
    summary_v: Array


def sparse_init(batch: int, max_len: int, num_heads: int, head_dim: int, dtype, *,
                block_size: int, local_blocks: int, global_tokens: int) -> SparseCache:  # fmt: skip
    window = block_size * local_blocks
    n_summary = -(-max_len // block_size) * global_tokens
    ring = jnp.zeros((batch, window, num_heads, head_dim), dtype)
    summary = jnp.zeros((batch, n_summary, num_heads, head_dim), dtype)
    return SparseCache(ring, ring, summary, summary)


def _summary_slot(q, B: int, c: int):
    return (q // B) * c + q % B - (B - c)


def _summary_positions(n_summary: int, B: int, c: int) -> np.ndarray:
    s = np.arange(n_summary)
    return (s // max(c, 1)) * B + B - c + s % max(c, 1)


def sparse_prefill(cache: SparseCache, k, v, *, block_size: int, local_blocks: int,
                   global_tokens: int) -> SparseCache:  # fmt: skip
    P = k.shape[1]
    B, c, window = block_size, global_tokens, block_size * local_blocks
    recent = np.arange(max(0, P - window), P)
    summary = np.flatnonzero(is_summary(np.arange(P), B, c))
    slots = _summary_slot(summary, B, c)
    return SparseCache(cache.local_k.at[:, recent % window].set(k[:, recent]),
                       cache.local_v.at[:, recent % window].set(v[:, recent]),
                       cache.summary_k.at[:, slots].set(k[:, summary]),
                       cache.summary_v.at[:, slots].set(v[:, summary]))  # fmt: skip


def sparse_step(cache: SparseCache, q_BxHxK, k_BxHxK, v_BxHxK, pos, *, block_size: int,
                local_blocks: int, global_tokens: int) -> tuple[Array, SparseCache]:  # fmt: skip
    """Attend position `pos` to I_pos (eq. (6)) from the ring and the summary slots."""
    B, c, window = block_size, global_tokens, block_size * local_blocks
    n_summary = cache.summary_k.shape[1]
    slot = pos % window
    local_k = cache.local_k.at[:, slot].set(k_BxHxK)
    local_v = cache.local_v.at[:, slot].set(v_BxHxK)
    summary_k, summary_v = cache.summary_k, cache.summary_v
    if c > 0:
        write = is_summary(pos, B, c)
        s = jnp.clip(_summary_slot(pos, B, c), 0, n_summary - 1)
        summary_k = summary_k.at[:, s].set(jnp.where(write, k_BxHxK, summary_k[:, s]))
        summary_v = summary_v.at[:, s].set(jnp.where(write, v_BxHxK, summary_v[:, s]))
    cache = SparseCache(local_k, local_v, summary_k, summary_v)
    ring_pos = pos - (pos - jnp.arange(window)) % window  # latest position held by each slot
    summary_pos = _summary_positions(n_summary, B, c)
    keep = jnp.concatenate([ring_pos >= 0, pos - summary_pos >= window])  # window ∪ older summaries
    keys = jnp.concatenate([local_k, summary_k], axis=1)
    values = jnp.concatenate([local_v, summary_v], axis=1)
    return _attend_one(q_BxHxK, keys, values, keep), cache
