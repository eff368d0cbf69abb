"""sparse: softmax attention restricted to the set I_i of eq. (6) of the paper (`masks.py`):
the last kB positions and the last c positions ("summary" tokens) of every block of B.

Forms: ``masked`` (reference: dense scores under the eq. (6) mask) and ``blocked`` (only the kept
blocks: k+1 local key blocks plus one column per summary token, O(L·sqrt(L)·D) for B ~ sqrt(L)).
Decode state: `SparseCache`, a ring of the last kB keys plus one slot per summary token, so a
step reads kB + c·L/B keys, not L. Options: block_size B (default 2^⌊log2 sqrt(max_len)⌋, §6.1),
local_blocks k (1), global_tokens c (1).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from jaxdp.models.masks import default_block_size, is_summary, sparse_mask
from jaxdp.models.mixers import softmax
from jaxdp.models.mixers.base import Array, ConfigError, Mixer, MixerOptions, ProbsFn, register
from jaxdp.models.mixers.standard import softmax_items
from jaxdp.runtime.validate import integer


def sparse_masked(
    q, k, v, *, block_size: int, local_blocks: int, global_tokens: int, probs_fn: ProbsFn = None
) -> Array:
    """Reference sparse attention: full L x L scores under the eq. (6) mask."""
    mask = sparse_mask(q.shape[1], block_size, local_blocks, global_tokens)
    return softmax.masked_softmax_attention(q, k, v, mask, probs_fn)


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


def sparse_blocked(
    q, k, v, *, block_size: int, local_blocks: int, global_tokens: int, probs_fn: ProbsFn = None
) -> Array:
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
    qb, kp, vp, k_local, v_local, _, _ = softmax.local_blocks(q, k, v, B, kb)
    s_local = jnp.einsum("bnqhk,bnshk->bnhqs", qb, k_local)
    mask = local_mask[None, :, None]
    scores = [s_local]
    if global_mask is not None:
        # the last c slots of the original blocks 0 .. nb-1 (padded blocks kb .. kb+nb-1)
        k_glob = kp[:, kb:, B - c :].reshape(Bt, nb * c, H, K)
        v_glob = vp[:, kb:, B - c :].reshape(Bt, nb * c, H, v.shape[-1])
        scores.append(jnp.einsum("bnqhk,bghk->bnhqg", qb, k_glob))
        gmask = np.broadcast_to(global_mask[:, None, None, :], (nb, 1, B, nb * c))
        mask = np.concatenate([np.broadcast_to(mask, (1, nb, 1, B, (kb + 1) * B)), gmask[None]], axis=-1)
    probs = softmax.masked_softmax(jnp.concatenate(scores, axis=-1), mask, probs_fn, v.dtype)
    n_local = (kb + 1) * B
    out = jnp.einsum("bnhqs,bnshk->bnqhk", probs[..., :n_local], v_local)
    if global_mask is not None:
        out = out + jnp.einsum("bnhqg,bghk->bnqhk", probs[..., n_local:], v_glob)
    return out.reshape(Bt, nb * B, H, v.shape[-1])[:, :L]


class SparseCache(NamedTuple):
    """The keys eq. (6) can still use: a ring of the last kB positions (slot q mod kB) and one
    slot per summary token (slot (q // B)·c + q mod B - (B - c)). A step reads kB + c·ceil(T/B)
    keys, O(B + L/B) instead of O(L)."""

    local_k: Array  # [B, min(kB, T), H, K]
    local_v: Array
    summary_k: Array  # [B, c·ceil(T/B), H, K]
    summary_v: Array


def sparse_init(
    batch: int,
    max_len: int,
    num_heads: int,
    head_dim: int,
    dtype,
    *,
    block_size: int,
    local_blocks: int,
    global_tokens: int,
) -> SparseCache:
    window = min(block_size * local_blocks, max_len)
    n_summary = -(-max_len // block_size) * global_tokens
    ring = jnp.zeros((batch, window, num_heads, head_dim), dtype)
    summary = jnp.zeros((batch, n_summary, num_heads, head_dim), dtype)
    return SparseCache(ring, ring, summary, summary)


def _summary_slot(q, B: int, c: int):
    return (q // B) * c + q % B - (B - c)


def _summary_positions(n_summary: int, B: int, c: int) -> np.ndarray:
    s = np.arange(n_summary)
    return (s // max(c, 1)) * B + B - c + s % max(c, 1)


def sparse_prefill(cache: SparseCache, k, v, *, block_size: int, local_blocks: int, global_tokens: int) -> SparseCache:
    B, c = block_size, global_tokens
    local_k, local_v = softmax.ring_prefill(cache.local_k, cache.local_v, k, v)
    summary = np.flatnonzero(is_summary(np.arange(k.shape[1]), B, c))
    slots = _summary_slot(summary, B, c)
    return SparseCache(
        local_k,
        local_v,
        cache.summary_k.at[:, slots].set(k[:, summary]),
        cache.summary_v.at[:, slots].set(v[:, summary]),
    )


def sparse_step(
    cache: SparseCache, q_BxHxK, k_BxHxK, v_BxHxK, pos, *, block_size: int, local_blocks: int, global_tokens: int
) -> tuple[Array, SparseCache]:
    """Attend position `pos` to I_pos (eq. (6)) from the ring and the summary slots."""
    B, c, window = block_size, global_tokens, block_size * local_blocks
    n_summary = cache.summary_k.shape[1]
    local_k, local_v, ring_pos = softmax.ring_step(cache.local_k, cache.local_v, k_BxHxK, v_BxHxK, pos)
    summary_k, summary_v = cache.summary_k, cache.summary_v
    if c > 0:
        write = is_summary(pos, B, c)
        s = jnp.clip(_summary_slot(pos, B, c), 0, n_summary - 1)
        summary_k = summary_k.at[:, s].set(jnp.where(write, k_BxHxK, summary_k[:, s]))
        summary_v = summary_v.at[:, s].set(jnp.where(write, v_BxHxK, summary_v[:, s]))
    cache = SparseCache(local_k, local_v, summary_k, summary_v)
    summary_pos = _summary_positions(n_summary, B, c)
    keep = jnp.concatenate([ring_pos >= 0, pos - summary_pos >= window])  # window ∪ older summaries
    keys = jnp.concatenate([local_k, summary_k], axis=1)
    values = jnp.concatenate([local_v, summary_v], axis=1)
    return softmax.attend_one(q_BxHxK, keys, values, keep), cache


@dataclasses.dataclass(frozen=True)
class SparseOptions(MixerOptions):
    form: str = "blocked"
    block_size: int | None = None  # None: the paper's 2^floor(log2 sqrt(max_len))
    local_blocks: int = 1
    global_tokens: int = 1


class Sparse(Mixer):
    name = "sparse"
    options = SparseOptions
    forms = ("masked", "blocked")
    derived = ("block_size",)  # filled from max_len by `resolve`
    summary = "softmax over the eq. (6) set: a window of kB tokens and c summary tokens per block (Child et al. 2019)"

    def resolve(self, options, config):
        options = super().resolve(options, config)
        if options.block_size is None:
            options = dataclasses.replace(options, block_size=default_block_size(config.max_len))
        integer(ConfigError, "ModelConfig.options.block_size", options.block_size, 1, config.max_len)
        integer(ConfigError, "ModelConfig.options.local_blocks", options.local_blocks)
        integer(ConfigError, "ModelConfig.options.global_tokens", options.global_tokens, 0, options.block_size)
        return options

    @staticmethod
    def _args(config) -> dict:
        o = config.options
        return dict(block_size=o.block_size, local_blocks=o.local_blocks, global_tokens=o.global_tokens)

    def mix(self, q, k, v, aux, config, probs_fn=None):
        fn = sparse_blocked if config.options.form == "blocked" else sparse_masked
        return fn(q, k, v, **self._args(config), probs_fn=probs_fn)

    def support(self, config, L):
        o = config.options
        return sparse_mask(L, o.block_size, o.local_blocks, o.global_tokens)

    def weights(self, q, k, aux, config):
        return softmax.softmax_weights(q, k, self.support(config, q.shape[1]))

    def init_state(self, batch, max_len, config):
        return sparse_init(
            batch, max_len, config.num_heads, config.head_dim, jnp.dtype(config.dtype), **self._args(config)
        )

    def prefill(self, state, q, k, v, aux, config):
        return sparse_prefill(state, k, v, **self._args(config))

    def step(self, state, q, k, v, aux, pos, config):
        return sparse_step(state, q, k, v, pos, **self._args(config))

    def flops(self, config, L):
        o, H = config.options, config.num_heads
        if o.form == "masked":
            return softmax_items(L * L * H, config, L)
        B, k, c = o.block_size, o.local_blocks, o.global_tokens
        nb = -(-L // B)
        keys = (k + 1) * B + (nb * c if c and nb >= k + 2 else 0)
        return softmax_items(nb * B * keys * H, config, L)

    def visible(self, config, pos: int) -> int:
        """|I_pos|: the keys query `pos` attends to (eq. (6))."""
        o = config.options
        B, c, window = o.block_size, o.global_tokens, o.block_size * o.local_blocks
        older = max(0, pos + 1 - window)  # positions 0 .. older-1 lie outside the window
        summaries = (older // B) * c + max(0, older % B - (B - c))
        return min(pos + 1, window) + summaries

    def step_flops(self, config, pos):
        return 4.0 * self.visible(config, pos) * config.dim

    def state_size(self, config, t):
        o = config.options
        return 2 * config.head_dim * (min(o.block_size * o.local_blocks, t) + o.global_tokens * -(-t // o.block_size))


register(Sparse())
