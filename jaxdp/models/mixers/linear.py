"""linear: eq. (7)-(8) of the paper with φ(x) = elu(x) + 1 (Katharopoulos et al. 2020).

    o_i = φ(q_i)ᵀ S_i / φ(q_i)ᵀ z_i,   S_i = Σ_{j<=i} φ(k_j) v_jᵀ,   z_i = Σ_{j<=i} φ(k_j)

Forms: ``quadratic`` (reference: the L x L matrix φ(Q) φ(K)ᵀ, causally masked), ``chunked``
(chunkwise-parallel: quadratic inside a chunk of `chunk_size`, the running (S, z) between
chunks) and ``scan`` (the recurrence of Lemma A.8 with `jax.lax.scan`). Decode state:
`LinearState` (S, z), K² + K numbers per head whatever the length.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxdp.models.masks import causal_mask
from jaxdp.models.mixers.base import Array, ConfigError, Mixer, MixerOptions, register
from jaxdp.models.mixers.softmax import pad_length
from jaxdp.runtime.validate import integer

FEATURE_MAP = 3  # elementwise FLOPs per element of φ (compare, add or exp, select)


def feature_map(x: Array) -> Array:
    """φ(x) = elu(x) + 1 (Katharopoulos et al. 2020), written as x + 1 for x > 0 and exp(x)
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
    C = min(chunk_size, L)  # a sequence shorter than a chunk is one chunk of its own length, unpadded
    n = -(-L // C)
    # Pad before phi: padded queries then get phi = 1 and a positive denominator (a zero one
    # would be sliced off in the forward pass but put 0 * inf = NaN into the gradient).
    fq = feature_map(pad_length(q, n * C)).reshape(Bt, n, C, H, K)
    fk = feature_map(pad_length(k, n * C)).reshape(Bt, n, C, H, K)
    vc = pad_length(v, n * C).reshape(Bt, n, C, H, v.shape[-1])
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


def readout(fq_BxHxK, S_BxHxKxK, z_BxHxK) -> Array:
    """φ(q)ᵀS / φ(q)ᵀz for one token."""
    num = jnp.einsum("bhk,bhkv->bhv", fq_BxHxK, S_BxHxKxK)
    return num / jnp.einsum("bhk,bhk->bh", fq_BxHxK, z_BxHxK)[..., None]


def _linear_update(state: LinearState, fk_BxHxK, v_BxHxK) -> LinearState:
    return LinearState(state.S_BxHxKxK + jnp.einsum("bhk,bhv->bhkv", fk_BxHxK, v_BxHxK), state.z_BxHxK + fk_BxHxK)


def linear_init(batch: int, num_heads: int, head_dim: int, dtype) -> LinearState:
    return LinearState(
        jnp.zeros((batch, num_heads, head_dim, head_dim), dtype), jnp.zeros((batch, num_heads, head_dim), dtype)
    )


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
        return carry, readout(feature_map(q_i), *carry)

    time_major = [jnp.moveaxis(x, 1, 0) for x in (q, k, v)]
    state, out_LxBxHxK = jax.lax.scan(step, state, time_major)
    return jnp.moveaxis(out_LxBxHxK, 0, 1), state


def linear_prefill(state: LinearState, k, v) -> LinearState:
    """State after a prompt: the sums of Lemma A.8 over all its positions."""
    fk = feature_map(k)
    return LinearState(
        state.S_BxHxKxK + jnp.einsum("blhk,blhv->bhkv", fk, v), state.z_BxHxK + jnp.einsum("blhk->bhk", fk)
    )


def linear_step(state: LinearState, q_BxHxK, k_BxHxK, v_BxHxK) -> tuple[Array, LinearState]:
    state = _linear_update(state, feature_map(k_BxHxK), v_BxHxK)
    return readout(feature_map(q_BxHxK), *state), state


def ceil_to(n: int, m: int) -> int:
    return -(-n // m) * m


def recurrent_items(config, L: int, form: str, chunk_size: int, decay: str | None = None) -> dict[str, float]:
    """Forward FLOPs of φ-linear attention (eq. (8)) in one of its forms, one layer and sequence;
    `decay` adds the work of a decay: "fixed" (a constant matrix XLA folds: one multiply per
    entry) or "gated" (cumulative log-gates, their differences and exponentials)."""
    D, H, K = config.dim, config.num_heads, config.head_dim
    fmap = 2 * L * D * FEATURE_MAP
    if form == "quadratic":
        extra = {"fixed": 1.0, "gated": 4.0}.get(decay, 0.0) * H * L * L  # c_i - c_j, exp, mask, multiply
        return {
            "scores": 2.0 * L * L * D,
            "mix": 2.0 * L * L * D,
            "elementwise": fmap + 2.0 * H * L * L + L * D + extra,
        }  # mask, row sums; divide
    if form == "scan":
        # per position: S += phi(k) v^T and z += phi(k); read phi(q)^T S and phi(q)^T z
        extra = 2.0 * L * D * K + 2.0 * L * D if decay else 0.0  # a_i S, a_i z
        return {"scores": 2.0 * L * D, "mix": 4.0 * L * D * K + 2.0 * L * D, "elementwise": fmap + 2.0 * L * D + extra}
    C = min(chunk_size, L)  # as linear_chunked: a short sequence is one chunk, unpadded
    Lp = ceil_to(L, C)
    intra = 2.0 * Lp * C * D
    state = 2.0 * Lp * D * K + 2.0 * Lp * D  # chunk sums of phi(k) v^T and phi(k)
    inter = 2.0 * Lp * D * K + 2.0 * Lp * D  # phi(q) against the state entering the chunk
    extra = 4.0 * H * Lp * C + 6.0 * Lp * D if decay else 0.0
    return {
        "scores": intra,
        "mix": intra + state + inter,
        "elementwise": fmap + 2.0 * H * Lp * C + 2.0 * Lp * D + extra,
    }


@dataclasses.dataclass(frozen=True)
class LinearOptions(MixerOptions):
    form: str = "chunked"
    chunk_size: int = 64


class Chunked(Mixer):
    """A mixer with a chunked form: `LinearOptions` (form, chunk_size), chunk_size checked."""

    options = LinearOptions

    def resolve(self, options, config):
        options = super().resolve(options, config)
        integer(ConfigError, "ModelConfig.options.chunk_size", options.chunk_size)
        return options


class Linear(Chunked):
    name = "linear"
    forms = ("quadratic", "chunked", "scan")
    summary = "linear attention with φ = elu + 1, eq. (7)-(8) (Katharopoulos et al. 2020)"

    def mix(self, q, k, v, aux, config, probs_fn=None):
        form = config.options.form
        if form == "quadratic":
            return linear_quadratic(q, k, v)
        if form == "scan":
            return linear_scan(q, k, v)
        return linear_chunked(q, k, v, chunk_size=config.options.chunk_size)

    def weights(self, q, k, aux, config):
        return linear_weights(q, k)

    def init_state(self, batch, max_len, config):
        return linear_init(batch, config.num_heads, config.head_dim, jnp.dtype(config.dtype))

    def prefill(self, state, q, k, v, aux, config):
        return linear_prefill(state, k, v)

    def step(self, state, q, k, v, aux, pos, config):
        return linear_step(state, q, k, v)

    def flops(self, config, L):
        return recurrent_items(config, L, config.options.form, config.options.chunk_size)

    def step_flops(self, config, pos):
        return 4.0 * config.dim * config.head_dim + 4.0 * config.dim

    def state_size(self, config, t):
        return config.head_dim**2 + config.head_dim


register(Linear())
