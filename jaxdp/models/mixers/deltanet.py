"""deltanet and gated_deltanet: linear attention with the delta rule (`jaxdp.models.mixers.delta`).

    q_t, k_t = l2norm(SiLU(q_t)), l2norm(SiLU(k_t)),  v_t = SiLU(v_t),  β_t = σ(w_h·x_t + b_h)
    deltanet (Yang et al. 2024):                  S_t = (I - β_t k_t k_tᵀ) S_{t-1} + β_t k_t v_tᵀ
    gated_deltanet (Yang, Kautz & Hatamizadeh 2025): S_t = α_t (I - β_t k_t k_tᵀ) S_{t-1} + β_t k_t v_tᵀ
    o_t = RMSNorm(S_tᵀ q_t) · g per head   (gated_deltanet: RMSNorm(S_tᵀ q_t ⊙ SiLU(z_t)) · g)

with α_t = exp(Δ_t A_h) and the gate z of `jaxdp.models.mixers.selective` (Mamba-2's, as the
Gated DeltaNet paper takes them). The short convolution both papers put on q, k, v is the model
option ``short_conv``. Forms: ``scan`` (the recurrence, the reference) and ``chunked`` (the WY/UT
form, for training). Decode state: S, K² numbers per head whatever the length.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from jaxdp.models.mixers import delta
from jaxdp.models.mixers.base import Array, register
from jaxdp.models.mixers.linear import Chunked
from jaxdp.models.mixers.mamba2 import SILU
from jaxdp.models.mixers.selective import (
    OutputGate,
    SelectiveDecay,
    decay_flops,
    decay_params,
    gate_flops,
    gate_params,
    gated_rms_norm,
)

L2_EPS = 1e-6


def l2norm(x: Array) -> Array:
    return x * jax.lax.rsqrt(jnp.sum(x * x, axis=-1, keepdims=True) + L2_EPS)


class DeltaParams(nnx.Module):
    """β's projection; the norm's scale g (deltanet) or the decay and the gate (gated_deltanet)."""

    def __init__(self, config, gated: bool, rngs: nnx.Rngs):
        dtypes = dict(dtype=jnp.dtype(config.dtype), param_dtype=jnp.dtype(config.param_dtype))
        self.beta = nnx.Linear(
            config.dim,
            config.num_heads,
            kernel_init=nnx.initializers.xavier_uniform(),
            bias_init=nnx.initializers.zeros,
            rngs=rngs,
            **dtypes,
        )
        self.decay = SelectiveDecay(config, rngs) if gated else None
        self.output = OutputGate(config, config.head_dim, rngs) if gated else None
        self.scale = None if gated else nnx.Param(jnp.ones((config.head_dim,), dtypes["param_dtype"]))


class DeltaAux(NamedTuple):
    """Per token: β [.., H], log α [.., H] (None: deltanet), the gate z [.., H, K] (None: deltanet),
    the norm's scale g [.., K]."""

    beta: Array
    log_alpha: Array | None
    z: Array | None
    scale: Array


class DeltaNet(Chunked):
    name = "deltanet"
    forms = ("scan", "chunked")
    gated = False
    float32_slack = 10.0
    summary = "linear attention with the delta rule, L2-normalised keys (DeltaNet, Yang et al. 2024)"

    def make_params(self, config, rngs):
        return DeltaParams(config, self.gated, rngs)

    def param_count(self, config):
        beta = config.dim * config.num_heads + config.num_heads
        if not self.gated:
            return beta + config.head_dim  # and the norm's scale g
        return beta + decay_params(config) + gate_params(config, config.head_dim)

    def aux(self, params, x_BxLxD, config):
        beta = jax.nn.sigmoid(params.beta(x_BxLxD).astype(jnp.promote_types(x_BxLxD.dtype, jnp.float32)))
        if not self.gated:
            scale = jnp.broadcast_to(params.scale[...], (*x_BxLxD.shape[:-1], config.head_dim))
            return DeltaAux(beta, None, None, scale)
        z, scale = params.output(x_BxLxD, config.num_heads)
        return DeltaAux(beta, params.decay(x_BxLxD)[0], z, scale)

    @staticmethod
    def _inputs(q, k, v, aux):
        beta = aux.beta.astype(v.dtype)
        log_alpha = None if aux.log_alpha is None else aux.log_alpha.astype(v.dtype)
        return l2norm(jax.nn.silu(q)), l2norm(jax.nn.silu(k)), jax.nn.silu(v), beta, log_alpha

    @staticmethod
    def _output(o, aux):
        return gated_rms_norm(o, aux.z, aux.scale, per_head=True)

    def mix(self, q, k, v, aux, config, probs_fn=None):
        args = self._inputs(q, k, v, aux)
        if config.options.form == "scan":
            return self._output(delta.delta_scan(*args), aux)
        return self._output(delta.delta_chunked(*args, chunk_size=config.options.chunk_size), aux)

    def init_state(self, batch, max_len, config):
        return delta.delta_init(batch, config.num_heads, config.head_dim, jnp.dtype(config.dtype))

    def prefill(self, state, q, k, v, aux, config):
        return delta.delta_prefill(state, *self._inputs(q, k, v, aux))

    def step(self, state, q, k, v, aux, pos, config):
        o, state = delta.delta_step(state, *self._inputs(q, k, v, aux))
        return self._output(o, aux), state

    def _aux_flops(self, config, tokens: int) -> float:
        H, D = config.num_heads, config.dim
        beta = tokens * (2.0 * D * H + 4.0 * H)
        inputs = tokens * (3 * SILU * D + 6.0 * D)  # SiLU on q, k, v; two l2norms
        if self.gated:
            return beta + inputs + decay_flops(config, tokens) + gate_flops(config, tokens)
        return beta + inputs + tokens * 5.0 * D  # RMSNorm

    def flops(self, config, L):
        items = delta.delta_items(config, L, config.options.form, config.options.chunk_size, self.gated)
        return {**items, "aux": self._aux_flops(config, L)}

    def step_flops(self, config, pos):
        return 8.0 * config.dim * config.head_dim + self._aux_flops(config, 1)

    def kept_per_token(self, config, L):
        if config.options.form == "scan":
            return 0.0
        return 6.0 * config.num_heads * min(config.options.chunk_size, L)  # A, P, the decay ratios, [U₀, W]

    def state_size(self, config, t):
        return config.head_dim**2


class GatedDeltaNet(DeltaNet):
    name = "gated_deltanet"
    gated = True
    summary = "the delta rule with a selective decay α_t and a gated output norm (Yang, Kautz & Hatamizadeh 2025)"


register(DeltaNet())
register(GatedDeltaNet())
