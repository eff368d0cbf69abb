"""The short causal convolution on q, k, v (``ModelConfig.short_conv``): per channel c,

    y_t[c] = b[c] + Σ_{i<w} W[i, c] · x_{t-w+1+i}[c]     (x_t = 0 for t < 0)

a depthwise filter over the last w tokens, as Mamba (Gu & Dao 2023), DeltaNet and zoology's
recipes put before their mixers. Weights start uniform in ±1/√w (PyTorch's Conv1d default, which
those recipes use), biases at zero. Decoding keeps the last w-1 inputs (`ConvState`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

Array = jax.Array


def _uniform(key, shape, dtype):
    bound = 1.0 / jnp.sqrt(shape[0])
    return jax.random.uniform(key, shape, jnp.float32, -bound, bound).astype(dtype)


class ConvState(NamedTuple):
    """A layer's decode state with a short convolution: the mixer's and the last w-1 inputs."""

    mixer: Any
    recent_BxWxC: Array


class ShortConv(nnx.Module):
    def __init__(self, channels: int, taps: int, config, rngs: nnx.Rngs):
        pdtype = jnp.dtype(config.param_dtype)
        self.kernel = nnx.Param(_uniform(rngs.params(), (taps, channels), pdtype))
        self.bias = nnx.Param(jnp.zeros((channels,), pdtype))
        self.taps = taps

    def __call__(self, x_BxLxC: Array) -> Array:
        w = self.kernel[...].astype(x_BxLxC.dtype)
        L = x_BxLxC.shape[1]
        padded = jnp.pad(x_BxLxC, ((0, 0), (self.taps - 1, 0), (0, 0)))
        return sum(w[i] * padded[:, i : i + L] for i in range(self.taps)) + self.bias[...].astype(x_BxLxC.dtype)

    def init_recent(self, batch: int, channels: int, dtype) -> Array:
        return jnp.zeros((batch, self.taps - 1, channels), dtype)

    def prefill(self, recent_BxWxC: Array, x_BxPxC: Array) -> Array:
        """The last w-1 inputs after a prompt (zeros before position 0)."""
        return jnp.concatenate([recent_BxWxC, x_BxPxC], axis=1)[:, x_BxPxC.shape[1] :]

    def step(self, recent_BxWxC: Array, x_BxC: Array) -> tuple[Array, Array]:
        window = jnp.concatenate([recent_BxWxC, x_BxC[:, None]], axis=1)  # [B, w, C]
        y = jnp.einsum("bwc,wc->bc", window, self.kernel[...].astype(x_BxC.dtype)) + self.bias[...].astype(x_BxC.dtype)
        return y, window[:, 1:]


def conv_flops(config, tokens: int) -> float:
    """w multiply-adds and a bias per channel of q, k, v and token."""
    return tokens * 3 * config.dim * (2.0 * config.short_conv) if config.short_conv else 0.0
