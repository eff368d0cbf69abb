"""window: causal softmax attention over the last w tokens, a sliding window (Beltagy et al.
2020, Longformer; Jiang et al. 2023, Mistral 7B):

    o_i = Σ_{i-w < j <= i} softmax_j(q_i·k_j / sqrt(K)) v_j

It is eq. (6) with no summary tokens (c = 0) and any w, not only multiples of a block. Forms:
``masked`` (reference: dense scores under the band mask) and ``blocked`` (queries in blocks of
`block_size`, each scoring only the ⌈(w-1)/B⌉ + 1 key blocks that can hold its window: O(L·w·D)).
Decode state: a ring buffer of the last w keys and values, 2K·min(w, t) numbers per head. With
depth M a token sees at most M·w tokens back, so a DP whose dependencies reach further cannot be
solved at any D, while an m-local one with w >= m can at constant D (Proposition 5.4's argument).
Options: window w (default 2·2^⌊log2 sqrt(max_len)⌋, the order of the sparse model's window),
block_size (default: the largest power of two <= min(w, 64)).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from jaxdp.models.masks import default_block_size
from jaxdp.models.mixers import softmax
from jaxdp.models.mixers.base import Array, ConfigError, Mixer, MixerOptions, ProbsFn, register
from jaxdp.models.mixers.standard import softmax_items
from jaxdp.runtime.validate import integer


def band_mask(L: int, w: int) -> np.ndarray:
    """bool[L, L]: query p sees key q iff p - w < q <= p."""
    p, q = np.arange(L)[:, None], np.arange(L)[None, :]
    return (q <= p) & (p - q < w)


def window_masked(q, k, v, *, window: int, probs_fn: ProbsFn = None) -> Array:
    """Reference sliding-window attention: full L x L scores under the band mask."""
    return softmax.masked_softmax_attention(q, k, v, band_mask(q.shape[1], window), probs_fn)


def window_blocked(q, k, v, *, window: int, block_size: int, probs_fn: ProbsFn = None) -> Array:
    """Sliding-window attention over key blocks only: query block b scores key blocks
    b - n .. b with n = ⌈(w - 1)/B⌉, masked to the band."""
    Bt, L, H, K = q.shape
    B = block_size
    before = -(-(window - 1) // B)
    qb, _, _, k_local, v_local, kpos, qpos = softmax.local_blocks(q, k, v, B, before)
    diff = qpos[:, :, None] - kpos[:, None, :]  # [nb, B, (before+1)B]
    mask = (kpos[:, None, :] >= 0) & (diff >= 0) & (diff < window)
    s = jnp.einsum("bnqhk,bnshk->bnhqs", qb, k_local)
    probs = softmax.masked_softmax(s, mask[None, :, None], probs_fn, v.dtype)
    out = jnp.einsum("bnhqs,bnshk->bnqhk", probs, v_local)
    return out.reshape(Bt, -1, H, v.shape[-1])[:, :L]


@dataclasses.dataclass(frozen=True)
class WindowOptions(MixerOptions):
    form: str = "blocked"
    window: int | None = None  # None: 2 · 2^floor(log2 sqrt(max_len))
    block_size: int | None = None  # None: the largest power of two <= min(window, 64)


class Window(Mixer):
    name = "window"
    options = WindowOptions
    forms = ("masked", "blocked")
    derived = ("window", "block_size")  # filled from max_len by `resolve`
    summary = "softmax over the last w tokens, a sliding window (Longformer; Mistral)"

    def resolve(self, options, config):
        options = super().resolve(options, config)
        if options.window is None:
            options = dataclasses.replace(options, window=2 * default_block_size(config.max_len))
        integer(ConfigError, "ModelConfig.options.window", options.window)
        if options.block_size is None:
            options = dataclasses.replace(options, block_size=2 ** int(np.log2(min(options.window, 64))))
        integer(ConfigError, "ModelConfig.options.block_size", options.block_size)
        return options

    def mix(self, q, k, v, aux, config, probs_fn=None):
        o = config.options
        if o.form == "masked":
            return window_masked(q, k, v, window=o.window, probs_fn=probs_fn)
        return window_blocked(q, k, v, window=o.window, block_size=o.block_size, probs_fn=probs_fn)

    def support(self, config, L):
        return band_mask(L, config.options.window)

    def weights(self, q, k, aux, config):
        return softmax.softmax_weights(q, k, self.support(config, q.shape[1]))

    def init_state(self, batch, max_len, config):
        shape = (batch, min(config.options.window, max_len), config.num_heads, config.head_dim)
        ring = jnp.zeros(shape, jnp.dtype(config.dtype))
        return ring, ring

    def prefill(self, state, q, k, v, aux, config):
        return softmax.ring_prefill(*state, k, v)

    def step(self, state, q, k, v, aux, pos, config):
        ring_k, ring_v, ring_pos = softmax.ring_step(*state, k, v, pos)
        keep = (ring_pos >= 0) & (pos - ring_pos < config.options.window)
        return softmax.attend_one(q, ring_k, ring_v, keep), (ring_k, ring_v)

    def flops(self, config, L):
        o, H = config.options, config.num_heads
        if o.form == "masked":
            return softmax_items(L * L * H, config, L)
        B = o.block_size
        keys = (-(-(o.window - 1) // B) + 1) * B
        return softmax_items(-(-L // B) * B * keys * H, config, L)

    def step_flops(self, config, pos):
        return 4.0 * min(pos + 1, config.options.window) * config.dim

    def state_size(self, config, t):
        return 2 * config.head_dim * min(config.options.window, t)


register(Window())
