"""standard: causal softmax attention, eq. (3)-(4) of the paper, scale 1/sqrt(K).

    o_i = Σ_{j<=i} softmax_j(q_i·k_j / sqrt(K)) v_j

Decode state: a KV cache of every earlier position (`KVCache`), 2K numbers per head and token.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax.numpy as jnp

from jaxdp.models.masks import causal_mask
from jaxdp.models.mixers import softmax
from jaxdp.models.mixers.base import Array, Mixer, MixerOptions, ProbsFn, register

SOFTMAX = 4  # elementwise FLOPs per score (max, subtract, exp, divide: close to XLA's count on CPU)


def standard(q, k, v, probs_fn: ProbsFn = None) -> Array:
    """Causal softmax attention, eq. (3)-(4)."""
    return softmax.masked_softmax_attention(q, k, v, causal_mask(q.shape[1]), probs_fn)


class KVCache(NamedTuple):
    """Keys and values of positions 0 .. max_len-1 (standard attention)."""

    k_BxTxHxK: Array
    v_BxTxHxK: Array


def kv_init(batch: int, max_len: int, num_heads: int, head_dim: int, dtype) -> KVCache:
    shape = (batch, max_len, num_heads, head_dim)
    return KVCache(jnp.zeros(shape, dtype), jnp.zeros(shape, dtype))


def kv_prefill(cache: KVCache, k, v) -> KVCache:
    return KVCache(cache.k_BxTxHxK.at[:, :k.shape[1]].set(k), cache.v_BxTxHxK.at[:, :v.shape[1]].set(v))


def kv_step(cache: KVCache, q_BxHxK, k_BxHxK, v_BxHxK, pos) -> tuple[Array, KVCache]:
    """Attend position `pos` to positions 0 .. pos of the cache."""
    cache = KVCache(cache.k_BxTxHxK.at[:, pos].set(k_BxHxK), cache.v_BxTxHxK.at[:, pos].set(v_BxHxK))
    keep = jnp.arange(cache.k_BxTxHxK.shape[1]) <= pos
    return softmax.attend_one(q_BxHxK, *cache, keep), cache


def softmax_items(n_scores: float, config, L: int) -> dict[str, float]:
    """FLOPs of softmax attention that computes `n_scores` scores (all heads)."""
    K = config.head_dim
    return {"scores": 2.0 * n_scores * K, "mix": 2.0 * n_scores * K,
            "elementwise": SOFTMAX * n_scores + L * config.dim}  # softmax; query scaling  # fmt: skip


@dataclasses.dataclass(frozen=True)
class StandardOptions(MixerOptions):
    form: str = "masked"


class Standard(Mixer):
    name = "standard"
    options = StandardOptions
    forms = ("masked",)
    summary = "causal softmax attention, eq. (3)-(4) (Vaswani et al. 2017)"

    def mix(self, q, k, v, aux, config, probs_fn=None):
        return standard(q, k, v, probs_fn)

    def weights(self, q, k, aux, config):
        return softmax.softmax_weights(q, k, causal_mask(q.shape[1]))

    def init_state(self, batch, max_len, config):
        return kv_init(batch, max_len, config.num_heads, config.head_dim, jnp.dtype(config.dtype))

    def prefill(self, state, q, k, v, aux, config):
        return kv_prefill(state, k, v)

    def step(self, state, q, k, v, aux, pos, config):
        return kv_step(state, q, k, v, pos)

    def flops(self, config, L):
        return softmax_items(L * L * config.num_heads, config, L)  # the whole square, masked entries too

    def step_flops(self, config, pos):
        return 4.0 * (pos + 1) * config.dim

    def state_size(self, config, t):
        return 2 * config.head_dim * t


register(Standard())
