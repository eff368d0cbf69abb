"""mamba2: the SSD layer of Mamba-2 (Dao & Gu 2024) as a mixer of per-head q, k, v:

    C_t, B_t, x_t = SiLU(q_t), SiLU(k_t), SiLU(v_t)                  (per head; N = P = K)
    S_t = a_t S_{t-1} + Δ_t B_t x_tᵀ,   y_t = S_tᵀ C_t + D_h x_t,   a_t = exp(Δ_t A_h)
    o_t = RMSNorm(y_t ⊙ SiLU(z_t)) · g                               (over the whole layer)

with Δ, A and the gate z = W_z x of `jaxdp.models.mixers.selective`. Mamba-2's head layout is
"multi-value" (one B and C shared by all heads); here every head has its own B and C, read from
the layer's key and query maps, Mamba-2's "multi-head" pattern (§7.2 of the paper), so the
expanded state has N = K numbers per channel and K channels per head: K² per head. The short
convolution Mamba-2 puts before the SiLU is the model option ``short_conv``.

Forms (`jaxdp.models.mixers.ssd`): ``scan`` (the recurrence, the reference), ``quadratic`` (the
dual L x L form), ``chunked`` (the block decomposition, for training). Decode state: S, K² numbers
per head whatever the length.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from jaxdp.models.mixers import ssd
from jaxdp.models.mixers.base import Array, register
from jaxdp.models.mixers.linear import Chunked, ceil_to
from jaxdp.models.mixers.selective import (
    OutputGate,
    SelectiveDecay,
    decay_flops,
    decay_params,
    gate_flops,
    gate_params,
    gated_rms_norm,
)

SILU = 4  # elementwise FLOPs per SiLU (negate, exp, add, divide)


class Mamba2Params(nnx.Module):
    def __init__(self, config, rngs: nnx.Rngs):
        self.decay = SelectiveDecay(config, rngs)
        self.skip = nnx.Param(jnp.ones((config.num_heads,), jnp.dtype(config.param_dtype)))  # D_h
        self.output = OutputGate(config, config.dim, rngs)


class Mamba2Aux(NamedTuple):
    """Per token: log a and Δ [.., H], the skip D_h [.., H], the gate z [.., H, K], the scale g [.., D]."""

    log_a: Array
    dt: Array
    skip: Array
    z: Array
    scale: Array


class Mamba2(Chunked):
    name = "mamba2"
    forms = ("scan", "quadratic", "chunked")
    summary = "Mamba-2's SSD layer: selective scalar decay, expanded state, gated RMSNorm (Dao & Gu 2024)"

    def make_params(self, config, rngs):
        return Mamba2Params(config, rngs)

    def param_count(self, config):
        return decay_params(config) + config.num_heads + gate_params(config, config.dim)

    def aux(self, params, x_BxLxD, config):
        log_a, dt = params.decay(x_BxLxD)
        z, scale = params.output(x_BxLxD, config.num_heads)
        skip = jnp.broadcast_to(params.skip[...], log_a.shape).astype(log_a.dtype)
        return Mamba2Aux(log_a, dt, skip, z, scale)

    @staticmethod
    def _inputs(q, k, v, aux):
        """C, B, Δx and x."""
        x = jax.nn.silu(v)
        return jax.nn.silu(q), jax.nn.silu(k), x * aux.dt[..., None].astype(x.dtype), x

    @staticmethod
    def _output(y, x, aux):
        y = y + aux.skip[..., None].astype(y.dtype) * x
        return gated_rms_norm(y, aux.z, aux.scale, per_head=False)

    def mix(self, q, k, v, aux, config, probs_fn=None):
        c, b, dx, x = self._inputs(q, k, v, aux)
        form = config.options.form
        if form == "scan":
            y = ssd.ssd_scan(c, b, dx, aux.log_a)
        elif form == "quadratic":
            y = ssd.ssd_quadratic(c, b, dx, aux.log_a)
        else:
            y = ssd.ssd_chunked(c, b, dx, aux.log_a, chunk_size=config.options.chunk_size)
        return self._output(y, x, aux)

    def init_state(self, batch, max_len, config):
        return ssd.ssd_init(batch, config.num_heads, config.head_dim, jnp.dtype(config.dtype))

    def prefill(self, state, q, k, v, aux, config):
        _, b, dx, _ = self._inputs(q, k, v, aux)
        return ssd.ssd_prefill(state, b, dx, aux.log_a)

    def step(self, state, q, k, v, aux, pos, config):
        c, b, dx, x = self._inputs(q, k, v, aux)
        y, state = ssd.ssd_step(state, c, b, dx, aux.log_a)
        return self._output(y, x, aux), state

    def flops(self, config, L):
        items = ssd_items(config, L, config.options.form, config.options.chunk_size)
        return {**items, "aux": decay_flops(config, L) + gate_flops(config, L)}

    def step_flops(self, config, pos):
        D, K = config.dim, config.head_dim
        return 4.0 * D * K + 3 * SILU * D + decay_flops(config, 1) + gate_flops(config, 1)

    def state_size(self, config, t):
        return config.head_dim**2


def ssd_items(config, L: int, form: str, chunk_size: int) -> dict[str, float]:
    """Forward FLOPs of the SSD kernel in one of its forms (one layer and sequence), plus the
    SiLUs on C, B, x, the Δ scaling and the skip term."""
    D, H, K = config.dim, config.num_heads, config.head_dim
    inputs = 3 * SILU * L * D + 3.0 * L * D  # SiLU on q, k, v; Δx; D_h x added
    if form == "quadratic":
        return {"scores": 2.0 * L * L * D, "mix": 2.0 * L * L * D, "elementwise": inputs + 5.0 * H * L * L}
    if form == "scan":
        return {"scores": 0.0, "mix": 4.0 * L * D * K, "elementwise": inputs + 2.0 * L * D * K}
    C = min(chunk_size, L)
    Lp = ceil_to(L, C)
    intra = 2.0 * Lp * C * D
    return {"scores": intra, "mix": intra + 4.0 * Lp * D * K, "elementwise": inputs + 5.0 * H * Lp * C + 3.0 * Lp * D}


register(Mamba2())
