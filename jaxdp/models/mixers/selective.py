"""Parameters the selective mixers share (`mamba2`, `gated_deltanet`): Mamba-2's decay and its
gated output norm (Dao & Gu 2024, §7; Yang, Kautz & Hatamizadeh 2025 take both over).

* the decay: Δ_t = softplus(w_h·x_t + b_h) per head, A_h = -exp(A_log_h), log a_t = Δ_t·A_h <= 0;
  b_h starts at softplus⁻¹ of a Δ drawn log-uniformly in [0.001, 0.1], A_h uniformly in [1, 16]
  (Mamba-2's initialisation);
* the output gate and norm: RMSNorm(o ⊙ SiLU(z)) · g with z = W_z x (W_z: D x D, no bias), the
  RMS taken over each group of `group` numbers (Mamba-2: the whole layer; Gated DeltaNet: a head).

Per-token values reach the kernels as arrays with a leading [B, L] (parameters broadcast), so that
one token's inputs are ``aux[:, 0]`` leaf by leaf.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from jaxdp.models.mixers.base import Array

DT_RANGE = (0.001, 0.1)
A_RANGE = (1.0, 16.0)
RMS_EPS = 1e-5


def _compute_dtype(config):
    return jnp.promote_types(jnp.dtype(config.dtype), jnp.float32)


def _dt_bias(key, shape, dtype):
    """softplus⁻¹(Δ) for Δ log-uniform in DT_RANGE."""
    low, high = math.log(DT_RANGE[0]), math.log(DT_RANGE[1])
    dt = jnp.exp(jax.random.uniform(key, shape, jnp.float32, low, high))
    return (dt + jnp.log(-jnp.expm1(-dt))).astype(dtype)


class SelectiveDecay(nnx.Module):
    """Δ and log a per head and token from the layer's input (module docstring)."""

    def __init__(self, config, rngs: nnx.Rngs):
        H, pdtype = config.num_heads, jnp.dtype(config.param_dtype)
        self.dt = nnx.Linear(
            config.dim,
            H,
            kernel_init=nnx.initializers.xavier_uniform(),
            bias_init=_dt_bias,
            dtype=_compute_dtype(config),
            param_dtype=pdtype,
            rngs=rngs,
        )
        self.A_log = nnx.Param(jnp.log(jax.random.uniform(rngs.params(), (H,), jnp.float32, *A_RANGE)).astype(pdtype))

    def __call__(self, x_BxLxD) -> tuple[Array, Array]:
        dt = jax.nn.softplus(self.dt(x_BxLxD))
        return -jnp.exp(self.A_log[...].astype(dt.dtype)) * dt, dt


class OutputGate(nnx.Module):
    """z = W_z x and the norm's scale g (module docstring)."""

    def __init__(self, config, scale_size: int, rngs: nnx.Rngs):
        dtypes = dict(dtype=jnp.dtype(config.dtype), param_dtype=jnp.dtype(config.param_dtype))
        self.gate = nnx.Linear(
            config.dim, config.dim, use_bias=False, kernel_init=nnx.initializers.xavier_uniform(), rngs=rngs, **dtypes
        )
        self.scale = nnx.Param(jnp.ones((scale_size,), dtypes["param_dtype"]))

    def __call__(self, x_BxLxD, num_heads: int) -> tuple[Array, Array]:
        """(z [B, L, H, K], g broadcast to [B, L, size])."""
        z = self.gate(x_BxLxD)
        g = jnp.broadcast_to(self.scale[...], (*x_BxLxD.shape[:-1], self.scale.shape[0]))
        return z.reshape(*z.shape[:-1], num_heads, -1), g


def decay_params(config) -> int:
    """`SelectiveDecay`'s parameters: Δ's map and bias [D, H] + [H], and A_log [H]."""
    return config.dim * config.num_heads + 2 * config.num_heads


def gate_params(config, scale_size: int) -> int:
    """`OutputGate`'s parameters: W_z [D, D] and the scale g [scale_size]."""
    return config.dim * config.dim + scale_size


def gated_rms_norm(o_xHxK: Array, z_xHxK: Array | None, scale: Array, per_head: bool) -> Array:
    """RMSNorm(o ⊙ SiLU(z)) · g over each head (`per_head`) or all heads (no gate where z is
    None); in at least float32."""
    dtype = jnp.promote_types(o_xHxK.dtype, jnp.float32)
    y = o_xHxK.astype(dtype)
    if z_xHxK is not None:
        y = y * jax.nn.silu(z_xHxK.astype(dtype))
    axes = (-1,) if per_head else (-2, -1)
    y = y * jax.lax.rsqrt(jnp.mean(y * y, axis=axes, keepdims=True) + RMS_EPS)
    g = scale.reshape(*scale.shape[:-1], *((1, -1) if per_head else o_xHxK.shape[-2:]))
    return (y * g).astype(o_xHxK.dtype)


def gate_flops(config, tokens: int) -> float:
    """FLOPs of the output gate and norm on `tokens` tokens: the D x D projection, SiLU, the
    product, the mean of squares, rsqrt, two scalings."""
    D = config.dim
    return tokens * (2.0 * D * D + 10.0 * D)


def decay_flops(config, tokens: int) -> float:
    """FLOPs of Δ and log a on `tokens` tokens: the D x H projection, softplus, exp, a product."""
    H = config.num_heads
    return tokens * (2.0 * config.dim * H + 8.0 * H)
