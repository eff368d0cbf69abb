"""Linear attention with a decay per token and head, the kernels `retention` and `gated` share.

With log-gates λ_i = log a_i <= 0 (per head), the state and read-out of eq. (8) become

    S_i = a_i S_{i-1} + φ(k_i) v_iᵀ,   z_i = a_i z_{i-1} + φ(k_i),   o_i = φ(q_i)ᵀ S_i / φ(q_i)ᵀ z_i,

that is o_i = Σ_{j<=i} e^{c_i - c_j} (φ(q_i)·φ(k_j)) v_j / Σ_{j<=i} e^{c_i - c_j} φ(q_i)·φ(k_j)
with c_i = Σ_{t<=i} λ_t. With every a_i = 1 this is eq. (8) exactly. Every decay factor is
computed as the exponential of a difference of cumulative log-gates that is <= 0, so nothing
overflows, and within a chunk only chunk-local sums are differenced.

Forms: `decay_quadratic` (reference: the L x L matrix), `decay_chunked` (quadratic inside a
chunk; the state between chunks by an associative scan over chunks) and `decay_scan` (the
recurrence, `lax.scan` over positions). The decode state is (S, z), as for `linear`.
"""

from __future__ import annotations

import abc

import jax
import jax.numpy as jnp

from jaxdp.models.masks import causal_mask
from jaxdp.models.mixers.base import Array
from jaxdp.models.mixers.linear import Linear, LinearState, feature_map, readout, recurrent_items
from jaxdp.models.mixers.softmax import pad_length


def masked_exp(diff: Array, mask) -> Array:
    """e^{diff} where `mask`, else 0; the exponential never sees an unmasked (possibly large) diff."""
    return jnp.where(mask, jnp.exp(jnp.where(mask, diff, 0.0)), 0.0)


def decay_matrix(c_BxLxH: Array, mask) -> Array:
    """e^{c_i - c_j} where mask[i, j], else 0: [B, H, L, L]."""
    return masked_exp(jnp.moveaxis(c_BxLxH[:, :, None, :] - c_BxLxH[:, None, :, :], -1, 1), mask)


def decay_quadratic(q, k, v, log_gates_BxLxH) -> Array:
    """Reference: the decayed, masked L x L matrix of the module docstring."""
    c = jnp.cumsum(log_gates_BxLxH, axis=1)
    a = jnp.einsum("blhk,bshk->bhls", feature_map(q), feature_map(k)) * decay_matrix(c, causal_mask(q.shape[1]))
    return jnp.einsum("bhls,bshk->blhk", a, v) / jnp.einsum("bhls->blh", a)[..., None]


def decay_weights(q, k, log_gates_BxLxH) -> Array:
    """w_BxHxLxS with o = w @ v (for drawing)."""
    c = jnp.cumsum(log_gates_BxLxH, axis=1)
    a = jnp.einsum("blhk,bshk->bhls", feature_map(q), feature_map(k)) * decay_matrix(c, causal_mask(q.shape[1]))
    return a / a.sum(-1, keepdims=True)


def chunk_states(decay_n, *sums):
    """The sums entering each chunk: X_in[t] = decay[t-1] X_in[t-1] + x_chunk[t-1], X_in[0] = 0,
    by an associative scan over chunks, for each of `sums` ([Bt, n, H, ...]; decay_n: [Bt, n, H],
    the decay across a whole chunk)."""

    def widen(d, x):
        return d.reshape(d.shape + (1,) * (x.ndim - d.ndim))

    def combine(a, b):
        (da, *xa), (db, *xb) = a, b
        return (da * db, *[widen(db, x) * x + y for x, y in zip(xa, xb)])

    _, *out = jax.lax.associative_scan(combine, (decay_n, *sums), axis=1)
    return [jnp.concatenate([jnp.zeros_like(x[:, :1]), x[:, :-1]], axis=1) for x in out]


def decay_chunked(q, k, v, log_gates_BxLxH, *, chunk_size: int) -> Array:
    """Chunkwise-parallel decayed linear attention: O(L·C·K + L·K²) per head."""
    Bt, L, H, K = q.shape
    C = min(chunk_size, L)  # as `linear_chunked`: a short sequence is one chunk, unpadded
    n = -(-L // C)
    fq = feature_map(pad_length(q, n * C)).reshape(Bt, n, C, H, K)  # pad before φ, as `linear_chunked`
    fk = feature_map(pad_length(k, n * C)).reshape(Bt, n, C, H, K)
    vc = pad_length(v, n * C).reshape(Bt, n, C, H, v.shape[-1])
    lg = jnp.pad(log_gates_BxLxH, ((0, 0), (0, n * C - L), (0, 0))).reshape(Bt, n, C, H)
    ell = jnp.cumsum(lg, axis=2)  # within the chunk, through position i
    total = ell[:, :, -1]  # [Bt, n, H]
    to_end = jnp.exp(total[:, :, None] - ell)  # decay from position j to the chunk's end
    s_in, z_in = chunk_states(
        jnp.exp(total),
        jnp.einsum("bnch,bnchk,bnchv->bnhkv", to_end, fk, vc),
        jnp.einsum("bnch,bnchk->bnhk", to_end, fk),
    )
    diff = jnp.moveaxis(ell[:, :, :, None] - ell[:, :, None, :], -1, 2)  # [Bt, n, H, C, C]
    mask = causal_mask(C)
    a = jnp.einsum("bnchk,bndhk->bnhcd", fq, fk) * masked_exp(diff, mask)
    from_start = jnp.exp(ell)  # decay from the chunk's start through position i
    num = jnp.einsum("bnch,bnchk,bnhkv->bnchv", from_start, fq, s_in) + jnp.einsum("bnhcd,bndhv->bnchv", a, vc)
    den = jnp.einsum("bnch,bnchk,bnhk->bnch", from_start, fq, z_in) + jnp.einsum("bnhcd->bnch", a)
    return (num / den[..., None]).reshape(Bt, n * C, H, v.shape[-1])[:, :L]


def decay_update(state: LinearState, fk_BxHxK, v_BxHxK, log_gate_BxH) -> LinearState:
    a = jnp.exp(log_gate_BxH)
    return LinearState(
        a[..., None, None] * state.S_BxHxKxK + jnp.einsum("bhk,bhv->bhkv", fk_BxHxK, v_BxHxK),
        a[..., None] * state.z_BxHxK + fk_BxHxK,
    )


def decay_scan(q, k, v, log_gates_BxLxH) -> Array:
    """The recurrence of the module docstring, `lax.scan` over positions."""
    Bt, L, H, K = q.shape
    init = LinearState(jnp.zeros((Bt, H, K, v.shape[-1]), v.dtype), jnp.zeros((Bt, H, K), v.dtype))

    def step(carry, inputs):
        q_i, k_i, v_i, lg_i = inputs
        carry = decay_update(carry, feature_map(k_i), v_i, lg_i)
        return carry, readout(feature_map(q_i), *carry)

    _, out = jax.lax.scan(step, init, [jnp.moveaxis(x, 1, 0) for x in (q, k, v, log_gates_BxLxH)])
    return jnp.moveaxis(out, 0, 1)


def decay_prefill(state: LinearState, k, v, log_gates_BxLxH) -> LinearState:
    """(S, z) after a prompt: each token weighted by its decay to the prompt's last position."""
    c = jnp.cumsum(log_gates_BxLxH, axis=1)
    w = jnp.exp(c[:, -1:] - c)  # [B, P, H]
    fk = feature_map(k)
    a = jnp.exp(c[:, -1])
    return LinearState(
        a[..., None, None] * state.S_BxHxKxK + jnp.einsum("blh,blhk,blhv->bhkv", w, fk, v),
        a[..., None] * state.z_BxHxK + jnp.einsum("blh,blhk->bhk", w, fk),
    )


def decay_step(state: LinearState, q_BxHxK, k_BxHxK, v_BxHxK, log_gate_BxH) -> tuple[Array, LinearState]:
    state = decay_update(state, feature_map(k_BxHxK), v_BxHxK, log_gate_BxH)
    return readout(feature_map(q_BxHxK), *state), state


class DecayMixer(Linear):
    """Linear attention with a decay: the kernels of `jaxdp.models.mixers.decay`, `linear`'s
    options, state and checks; subclasses say where the log-gates come from (`log_gates`)."""

    @abc.abstractmethod
    def log_gates(self, aux, config, shape) -> jnp.ndarray:
        """log a, of `shape` ([B, L, H], or [B, H] for one token)."""

    def mix(self, q, k, v, aux, config, probs_fn=None):
        lg = self.log_gates(aux, config, q.shape[:3])
        form = config.options.form
        if form == "quadratic":
            return decay_quadratic(q, k, v, lg)
        if form == "scan":
            return decay_scan(q, k, v, lg)
        return decay_chunked(q, k, v, lg, chunk_size=config.options.chunk_size)

    def weights(self, q, k, aux, config):
        return decay_weights(q, k, self.log_gates(aux, config, q.shape[:3]))

    def prefill(self, state, q, k, v, aux, config):
        return decay_prefill(state, k, v, self.log_gates(aux, config, k.shape[:3]))

    def step(self, state, q, k, v, aux, pos, config):
        return decay_step(state, q, k, v, self.log_gates(aux, config, q.shape[:2]))  # one token: [B, H]

    decay_kind = "gated"  # what the decay costs (`recurrent_items`)

    def flops(self, config, L):
        return recurrent_items(config, L, config.options.form, config.options.chunk_size, decay=self.decay_kind)

    def step_flops(self, config, pos):
        return 4.0 * config.dim * config.head_dim + 8.0 * config.dim
