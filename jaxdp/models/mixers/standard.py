"""standard: causal softmax attention, eq. (3)-(4) of the paper, scale 1/sqrt(K).

    o_i = Σ_{j<=i} softmax_j(q_i·k_j / sqrt(K)) v_j

Decode state: a KV cache of every earlier position (`KVCache`), 2K numbers per head and token.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxdp.models.masks import causal_mask
from jaxdp.models.mixers import softmax
from jaxdp.models.mixers.base import Array, Mixer, MixerOptions, ProbsFn, register

SOFTMAX = 4  # elementwise FLOPs per score (max, subtract, exp, divide: close to XLA's count on CPU)


def standard(q, k, v, probs_fn: ProbsFn = None) -> Array:
    """Causal softmax attention, eq. (3)-(4)."""
    return softmax.masked_softmax_attention(q, k, v, causal_mask(q.shape[1]), probs_fn)


def cudnn_applies(q, probs_fn: ProbsFn = None) -> bool:
    """Whether `standard` may run as cuDNN's fused attention: on a GPU, in 16-bit floats, head
    size a multiple of 8 up to 128, and no dropout on the probabilities (cuDNN's kernel through
    `jax.nn.dot_product_attention` takes none)."""
    return (
        jax.default_backend() == "gpu"
        and probs_fn is None
        and q.dtype in (jnp.bfloat16, jnp.float16)
        and q.shape[-1] % 8 == 0
        and q.shape[-1] <= 128
    )


def fused(q, k, v, implementation: str | None = "cudnn") -> Array:
    """Causal softmax attention, eq. (3)-(4), by `jax.nn.dot_product_attention` ([B, L, H, K] in
    and out, scale 1/sqrt(K)); "xla" is its plain-XLA form, for checking this call on any device."""
    return jax.nn.dot_product_attention(q, k, v, is_causal=True, implementation=implementation)


class KVCache(NamedTuple):
    """Keys and values of positions 0 .. max_len-1 (standard attention), heads first: one decode
    query's scores are then a batched matrix-vector product over contiguous rows (on a CPU 6x
    faster than the [B, T, H, K] layout at T = 212)."""

    k_BxHxTxK: Array
    v_BxHxTxK: Array


def kv_init(batch: int, max_len: int, num_heads: int, head_dim: int, dtype) -> KVCache:
    shape = (batch, num_heads, max_len, head_dim)
    return KVCache(jnp.zeros(shape, dtype), jnp.zeros(shape, dtype))


def kv_prefill(cache: KVCache, k_BxPxHxK, v_BxPxHxK) -> KVCache:
    at = (0, 0, 0, 0)
    return KVCache(
        jax.lax.dynamic_update_slice(cache.k_BxHxTxK, softmax.heads_first(k_BxPxHxK), at),
        jax.lax.dynamic_update_slice(cache.v_BxHxTxK, softmax.heads_first(v_BxPxHxK), at),
    )


def kv_grow(cache: KVCache, max_len: int) -> KVCache:
    """The cache with empty slots appended up to `max_len` positions."""
    more = max_len - cache.k_BxHxTxK.shape[2]
    pad = ((0, 0), (0, 0), (0, more), (0, 0))
    return KVCache(jnp.pad(cache.k_BxHxTxK, pad), jnp.pad(cache.v_BxHxTxK, pad))


def kv_step(cache: KVCache, q_BxHxK, k_BxHxK, v_BxHxK, pos) -> tuple[Array, KVCache]:
    """Attend position `pos` to positions 0 .. pos of the cache (written in place)."""
    zero = jnp.int32(0)
    at = (zero, zero, jnp.asarray(pos, jnp.int32), zero)  # one index type, also under jax_enable_x64
    cache = KVCache(
        jax.lax.dynamic_update_slice(cache.k_BxHxTxK, k_BxHxK[:, :, None], at),
        jax.lax.dynamic_update_slice(cache.v_BxHxTxK, v_BxHxK[:, :, None], at),
    )
    keep = jnp.arange(cache.k_BxHxTxK.shape[2]) <= pos
    return softmax.attend_one_heads_first(q_BxHxK, *cache, keep), cache


def softmax_items(n_scores: float, config, L: int) -> dict[str, float]:
    """FLOPs of softmax attention that computes `n_scores` scores (all heads)."""
    K = config.head_dim
    return {
        "scores": 2.0 * n_scores * K,
        "mix": 2.0 * n_scores * K,
        "elementwise": SOFTMAX * n_scores + L * config.dim,
    }  # softmax; query scaling


@dataclasses.dataclass(frozen=True)
class StandardOptions(MixerOptions):
    form: str = "masked"


class Standard(Mixer):
    name = "standard"
    options = StandardOptions
    forms = ("masked",)
    summary = "causal softmax attention, eq. (3)-(4) (Vaswani et al. 2017)"

    def mix(self, q, k, v, aux, config, probs_fn=None):
        if cudnn_applies(q, probs_fn):
            return fused(q, k, v)
        return standard(q, k, v, probs_fn)

    def weights(self, q, k, aux, config):
        return softmax.softmax_weights(q, k, causal_mask(q.shape[1]))

    def init_state(self, batch, max_len, config):
        return kv_init(batch, max_len, config.num_heads, config.head_dim, jnp.dtype(config.dtype))

    def prefill(self, state, q, k, v, aux, config):
        return kv_prefill(state, k, v)

    def grow_state(self, state, max_len, config):
        return kv_grow(state, max_len)

    def step(self, state, q, k, v, aux, pos, config):
        return kv_step(state, q, k, v, pos)

    def flops(self, config, L):
        return softmax_items(L * L * config.num_heads, config, L)  # the whole square, masked entries too

    def step_flops(self, config, pos):
        return 4.0 * (pos + 1) * config.dim

    def state_size(self, config, t):
        return 2 * config.head_dim * t


register(Standard())
