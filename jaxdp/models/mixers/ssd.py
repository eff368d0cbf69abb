"""The state-space dual (SSD) kernels of Mamba-2 (Dao & Gu 2024, §3-§6): a scalar decay per head
and token, no feature map, no normaliser. With log-decays λ_i = log a_i <= 0 and c_i = Σ_{t<=i} λ_t,

    S_i = a_i S_{i-1} + k_i v_iᵀ,   o_i = S_iᵀ q_i,   i.e.   o_i = Σ_{j<=i} e^{c_i - c_j} (q_i·k_j) v_j

(in Mamba-2's letters q = C, k = B, v = Δ·x; the mixer (`mamba2`) scales v by Δ). Forms: `ssd_scan`
(the recurrence, the reference), `ssd_quadratic` (the L x L "attention" matrix of the dual form),
`ssd_chunked` (the block decomposition: quadratic inside a chunk, the state between chunks by an
associative scan). Decode state: `SSDState`, S of K² numbers per head.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxdp.models.masks import causal_mask
from jaxdp.models.mixers.base import Array
from jaxdp.models.mixers.decay import chunk_states, decay_matrix, masked_exp
from jaxdp.models.mixers.softmax import pad_length


class SSDState(NamedTuple):
    """S = Σ_j e^{c_t - c_j} k_j v_jᵀ per head."""

    S_BxHxKxK: Array


def ssd_init(batch: int, num_heads: int, head_dim: int, dtype) -> SSDState:
    return SSDState(jnp.zeros((batch, num_heads, head_dim, head_dim), dtype))


def ssd_update(state: SSDState, k_BxHxK, v_BxHxK, log_a_BxH) -> SSDState:
    a = jnp.exp(log_a_BxH)[..., None, None]
    return SSDState(a * state.S_BxHxKxK + jnp.einsum("bhk,bhv->bhkv", k_BxHxK, v_BxHxK))


def ssd_step(state: SSDState, q_BxHxK, k_BxHxK, v_BxHxK, log_a_BxH) -> tuple[Array, SSDState]:
    state = ssd_update(state, k_BxHxK, v_BxHxK, log_a_BxH)
    return jnp.einsum("bhk,bhkv->bhv", q_BxHxK, state.S_BxHxKxK), state


def ssd_scan(q, k, v, log_a_BxLxH) -> Array:
    """The recurrence of the module docstring, `lax.scan` over positions."""
    Bt, L, H, K = q.shape

    def step(carry, inputs):
        out, carry = ssd_step(carry, *inputs)
        return carry, out

    init = ssd_init(Bt, H, K, v.dtype)
    _, out = jax.lax.scan(step, init, [jnp.moveaxis(x, 1, 0) for x in (q, k, v, log_a_BxLxH)])
    return jnp.moveaxis(out, 0, 1)


def ssd_quadratic(q, k, v, log_a_BxLxH) -> Array:
    """The dual form: (Q Kᵀ ∘ decay ∘ causal) V, one L x L matrix per head (`ssd_weights`)."""
    return jnp.einsum("bhls,bshk->blhk", ssd_weights(q, k, log_a_BxLxH), v)


def ssd_weights(q, k, log_a_BxLxH) -> Array:
    """The dual form's matrix w_BxHxLxS with o = w @ v (unnormalised: rows need not sum to 1)."""
    c = jnp.cumsum(log_a_BxLxH, axis=1)
    return jnp.einsum("blhk,bshk->bhls", q, k) * decay_matrix(c, causal_mask(q.shape[1]))


def ssd_chunked(q, k, v, log_a_BxLxH, *, chunk_size: int) -> Array:
    """Block decomposition: O(L·C·K + L·K²) per head (Dao & Gu 2024, §6)."""
    Bt, L, H, K = q.shape
    C = min(chunk_size, L)
    n = -(-L // C)
    qc, kc, vc = (pad_length(x, n * C).reshape(Bt, n, C, H, x.shape[-1]) for x in (q, k, v))
    ell = jnp.cumsum(jnp.pad(log_a_BxLxH, ((0, 0), (0, n * C - L), (0, 0))).reshape(Bt, n, C, H), axis=2)
    total = ell[:, :, -1]
    (s_in,) = chunk_states(
        jnp.exp(total), jnp.einsum("bnch,bnchk,bnchv->bnhkv", jnp.exp(total[:, :, None] - ell), kc, vc)
    )
    mask = causal_mask(C)
    diff = jnp.moveaxis(ell[:, :, :, None] - ell[:, :, None, :], -1, 2)  # [Bt, n, H, C, C]
    a = jnp.einsum("bnchk,bndhk->bnhcd", qc, kc) * masked_exp(diff, mask)
    out = jnp.einsum("bnch,bnchk,bnhkv->bnchv", jnp.exp(ell), qc, s_in) + jnp.einsum("bnhcd,bndhv->bnchv", a, vc)
    return out.reshape(Bt, n * C, H, v.shape[-1])[:, :L]


def ssd_prefill(state: SSDState, k, v, log_a_BxLxH) -> SSDState:
    """S after a prompt: each token weighted by its decay to the prompt's last position."""
    c = jnp.cumsum(log_a_BxLxH, axis=1)
    w = jnp.exp(c[:, -1:] - c)
    a = jnp.exp(c[:, -1])[..., None, None]
    return SSDState(a * state.S_BxHxKxK + jnp.einsum("blh,blhk,blhv->bhkv", w, k, v))
