"""gated: linear attention with a data-dependent scalar decay per head and token, the
scalar-gate family of Mamba-2 (Dao & Gu 2024) and gated linear attention (Yang et al. 2024):

    S_i = a_i S_{i-1} + φ(k_i) v_iᵀ,   z_i = a_i z_{i-1} + φ(k_i),   o_i = φ(q_i)ᵀ S_i / φ(q_i)ᵀ z_i,
    a_i = σ(w_h·x_i + b_h)

with x_i the layer's (normalised) input and one gate vector w_h and bias b_h per head, the
mixer's own parameters (``attn.mixer_params.gate``). The bias starts at ln 63, so σ(b_h) = 63/64
and a fresh model remembers about 64 tokens. The log-gates log a_i = -softplus(-(w_h·x_i + b_h))
are computed stably; every decay is e^{c_i - c_j} <= 1 of cumulative log-gates. Normalisation
by z as in eq. (8), so a_i ≡ 1 is the paper's linear attention exactly. Forms and decode state:
those of `jaxdp.models.mixers.decay` (quadratic, chunked, scan; (S, z), K² + K per head).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from jaxdp.models.mixers.base import register
from jaxdp.models.mixers.decay import DecayMixer
from jaxdp.models.mixers.linear import LinearOptions

GATE_BIAS = math.log(63.0)  # σ(b) = 63/64 at initialisation


class Gate(nnx.Module):
    """One gate logit per head from the layer's input: x W + b, W [D, H]."""

    def __init__(self, config, rngs: nnx.Rngs):
        dtypes = dict(dtype=jnp.dtype(config.dtype), param_dtype=jnp.dtype(config.param_dtype))
        self.gate = nnx.Linear(
            config.dim,
            config.num_heads,
            kernel_init=nnx.initializers.xavier_uniform(),
            bias_init=nnx.initializers.constant(GATE_BIAS),
            rngs=rngs,
            **dtypes,
        )

    def __call__(self, x_BxLxD):
        logits = self.gate(x_BxLxD)
        return -jax.nn.softplus(-logits.astype(jnp.promote_types(logits.dtype, jnp.float32)))  # log σ(·), [B, L, H]


class Gated(DecayMixer):
    name = "gated"
    options = LinearOptions  # form and chunk_size, as linear
    summary = "linear attention with a data-dependent decay σ(w_h·x_i) per head (Mamba-2; GLA)"

    def make_params(self, config, rngs):
        return Gate(config, rngs)

    def param_count(self, config):
        return config.dim * config.num_heads + config.num_heads  # `Gate`: W [D, H] and b [H]

    def aux(self, params, x_BxLxD, config):
        return params(x_BxLxD)

    def log_gates(self, aux, config, shape):
        return aux

    def flops(self, config, L):
        items = super().flops(config, L)
        H, D = config.num_heads, config.dim
        return {**items, "aux": 2.0 * L * D * H + 5.0 * L * H}  # the gate projection, softplus

    def step_flops(self, config, pos):
        return super().step_flops(config, pos) + 2.0 * config.dim * config.num_heads


register(Gated())
