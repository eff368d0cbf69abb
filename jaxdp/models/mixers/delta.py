"""Delta-rule kernels (DeltaNet: Schlag et al. 2021, Yang et al. 2024; Gated DeltaNet: Yang, Kautz
& Hatamizadeh 2025). With S [K, V] per head, a write strength β_t ∈ (0, 1) and a decay α_t ∈ (0, 1]
(α ≡ 1: DeltaNet),

    S_t = α_t (I - β_t k_t k_tᵀ) S_{t-1} + β_t k_t v_tᵀ,   o_t = S_tᵀ q_t,

i.e. with S' = α_t S_{t-1}: S_t = S' + β_t k_t (v_t - S'ᵀ k_t)ᵀ, a step of gradient descent on
½‖Sᵀk_t - v_t‖² that overwrites what key k_t held.

Forms: `delta_scan` (the recurrence, the reference) and `delta_chunked`, the WY/UT form of Yang et
al. (2024): within a chunk of C positions, with γ_t = Π_{s<=t} α_s from the chunk's start and S₀
the state entering it, the pseudo-values u_t = β_t (v_t - α_t S_{t-1}ᵀ k_t) solve one unit lower
triangular system

    (I + A) U = diag(β) (V - diag(γ) K S₀),   A_tj = β_t (γ_t/γ_j) k_t·k_j  (j < t),

so U = U₀ - W S₀ with [U₀, W] = (I + A)⁻¹ diag(β) [V, diag(γ) K] computed for every chunk at once
(the inverse by doubling block sizes, `delta_inverse`);
then O = diag(γ) Q S₀ + (Q Kᵀ ∘ γ_t/γ_j ∘ causal) U and S_C = γ_C S₀ + (diag(γ_C/γ) K)ᵀ U, a
scan over chunks of matrix products. Decode state: S, K·V numbers per head.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxdp.models.masks import causal_mask
from jaxdp.models.mixers.base import Array
from jaxdp.models.mixers.decay import masked_exp
from jaxdp.models.mixers.softmax import pad_length


class DeltaState(NamedTuple):
    S_BxHxKxV: Array


def delta_init(batch: int, num_heads: int, head_dim: int, dtype) -> DeltaState:
    return DeltaState(jnp.zeros((batch, num_heads, head_dim, head_dim), dtype))


def _no_decay(beta):
    return jnp.zeros_like(beta)


def delta_step(state: DeltaState, q_BxHxK, k_BxHxK, v_BxHxK, beta_BxH, log_alpha_BxH=None) -> tuple[Array, DeltaState]:
    """One write, then the read-out o = Sᵀq."""
    log_alpha_BxH = _no_decay(beta_BxH) if log_alpha_BxH is None else log_alpha_BxH
    S = jnp.exp(log_alpha_BxH)[..., None, None] * state.S_BxHxKxV
    error = v_BxHxK - jnp.einsum("bhkv,bhk->bhv", S, k_BxHxK)
    S = S + jnp.einsum("bhk,bhv->bhkv", k_BxHxK, beta_BxH[..., None] * error)
    return jnp.einsum("bhk,bhkv->bhv", q_BxHxK, S), DeltaState(S)


def delta_scan_with_state(q, k, v, beta_BxLxH, log_alpha_BxLxH=None, state: DeltaState | None = None):
    """The recurrence over positions (`lax.scan`): (o_BxLxHxV, the final state)."""
    Bt, L, H, K = q.shape
    log_alpha_BxLxH = _no_decay(beta_BxLxH) if log_alpha_BxLxH is None else log_alpha_BxLxH
    state = delta_init(Bt, H, K, v.dtype) if state is None else state

    def step(carry, inputs):
        out, carry = delta_step(carry, *inputs)
        return carry, out

    state, out = jax.lax.scan(step, state, [jnp.moveaxis(x, 1, 0) for x in (q, k, v, beta_BxLxH, log_alpha_BxLxH)])
    return jnp.moveaxis(out, 0, 1), state


def delta_scan(q, k, v, beta_BxLxH, log_alpha_BxLxH=None) -> Array:
    return delta_scan_with_state(q, k, v, beta_BxLxH, log_alpha_BxLxH)[0]


def delta_prefill(state: DeltaState, q, k, v, beta_BxLxH, log_alpha_BxLxH=None) -> DeltaState:
    return delta_scan_with_state(q, k, v, beta_BxLxH, log_alpha_BxLxH, state)[1]


def _chunks(x_BxLxHx, n: int, C: int) -> Array:
    """[Bt, L, H, ...] -> [n, Bt, H, C, ...] (padded with zeros: β = 0, log α = 0 write nothing)."""
    x = jnp.pad(x_BxLxHx, [(0, 0), (0, n * C - x_BxLxHx.shape[1])] + [(0, 0)] * (x_BxLxHx.ndim - 2))
    x = x.reshape(x.shape[0], n, C, *x.shape[2:])
    return jnp.moveaxis(jnp.swapaxes(x, 2, 3), 1, 0)


def delta_inverse(k: Array, beta: Array, g: Array) -> Array:
    """(I + A)⁻¹ of the module docstring, A_tj = β_t e^{g_t - g_j} k_t·k_j for j < t ([..., C, K],
    [..., C], [..., C] -> [..., C, C]), by doubling: the inverses of the diagonal blocks of size b
    give those of size 2b, the lower-left block of each being -X₂₂ A₂₁ X₁₁, where A₂₁ (rows after
    columns) needs no mask. Every block of a level in one batched product, log₂ C levels: a few
    dozen kernels where LAPACK's batched triangular solve stalled a step sharded over two CPU
    devices and escaped XLA's FLOP count, and a recursion compiled hundreds."""
    C, K = k.shape[-2:]
    P = 1 << (C - 1).bit_length()  # padded to a power of two: β = 0 rows are identity rows
    pad = [(0, 0)] * (beta.ndim - 1) + [(0, P - C)]
    k, beta, g = jnp.pad(k, pad + [(0, 0)]), jnp.pad(beta, pad), jnp.pad(g, pad, mode="edge")
    lead = k.shape[:-2]
    X = jnp.ones((*lead, P, 1, 1), k.dtype)  # P blocks of size 1
    b = 1
    while b < P:
        pairs = P // (2 * b)
        X = X.reshape(*lead, pairs, 2, b, b)
        kb, bb, gb = k.reshape(*lead, pairs, 2, b, K), beta.reshape(*lead, pairs, 2, b), g.reshape(*lead, pairs, 2, b)
        a21 = (
            bb[..., 1, :, None]
            * jnp.exp(gb[..., 1, :, None] - gb[..., 0, None, :])
            * jnp.einsum("...ck,...dk->...cd", kb[..., 1, :, :], kb[..., 0, :, :])
        )
        x21 = -(X[..., 1, :, :] @ (a21 @ X[..., 0, :, :]))
        top = jnp.concatenate([X[..., 0, :, :], jnp.zeros_like(x21)], axis=-1)
        X = jnp.concatenate([top, jnp.concatenate([x21, X[..., 1, :, :]], axis=-1)], axis=-2)
        b *= 2
    return X[..., 0, :C, :C]


def delta_inverse_flops(n: int, K: int) -> float:
    """What `delta_inverse` computes for one chunk of n positions (padded to a power of two P)
    and one head: per level of block size b, P/2b products k₂k₁ᵀ and two b x b products."""
    P, b, total = 1 << (n - 1).bit_length(), 1, 0.0
    while b < P:
        pairs = P // (2 * b)
        total += pairs * (2.0 * b * b * K + 4.0 * b * b + 2 * 2.0 * b * b * b + b * b)
        b *= 2
    return total


def delta_chunked(q, k, v, beta_BxLxH, log_alpha_BxLxH=None, *, chunk_size: int) -> Array:
    """The WY/UT form of the module docstring: O(L·C·K + L·K²) per head."""
    Bt, L, H, K = q.shape
    log_alpha_BxLxH = _no_decay(beta_BxLxH) if log_alpha_BxLxH is None else log_alpha_BxLxH
    C = min(chunk_size, L)
    n = -(-L // C)
    qc, kc, vc = (_chunks(pad_length(x, n * C), n, C) for x in (q, k, v))  # [n, Bt, H, C, K]
    beta, g = _chunks(beta_BxLxH, n, C), jnp.cumsum(_chunks(log_alpha_BxLxH, n, C), axis=-1)  # [n, Bt, H, C]
    causal, diff = causal_mask(C), g[..., :, None] - g[..., None, :]
    rhs = beta[..., None] * jnp.concatenate([vc, jnp.exp(g)[..., None] * kc], axis=-1)
    solved = delta_inverse(kc, beta, g) @ rhs
    u0, w = solved[..., : v.shape[-1]], solved[..., v.shape[-1] :]
    p = jnp.einsum("...ck,...dk->...cd", qc, kc) * masked_exp(diff, causal)
    qg, k_end = jnp.exp(g)[..., None] * qc, jnp.exp(g[..., -1:] - g)[..., None] * kc
    gamma_c = jnp.exp(g[..., -1])[..., None, None]

    def chunk(S, xs):
        u0, w, p, qg, k_end, gamma_c = xs
        u = u0 - w @ S
        return gamma_c * S + jnp.swapaxes(k_end, -1, -2) @ u, qg @ S + p @ u

    S0 = jnp.zeros((Bt, H, K, v.shape[-1]), v.dtype)
    _, out = jax.lax.scan(chunk, S0, (u0, w, p, qg, k_end, gamma_c), unroll=True)  # [n, Bt, H, C, V]
    out = jnp.moveaxis(jnp.swapaxes(out, 2, 3), 0, 1).reshape(Bt, n * C, H, v.shape[-1])
    return out[:, :L]


def delta_items(config, L: int, form: str, chunk_size: int, gated: bool) -> dict[str, float]:
    """Forward FLOPs of a delta-rule kernel (one layer and sequence; V = K)."""
    D, H, K = config.dim, config.num_heads, config.head_dim
    if form == "scan":  # per token: decay, Sᵀk, the write, Sᵀq
        return {
            "scores": 2.0 * L * D * K,
            "mix": 6.0 * L * D * K,
            "elementwise": (2.0 * L * D * K if gated else 0.0) + 3.0 * L * D,
        }
    C = min(chunk_size, L)
    n = -(-L // C)
    Lp = n * C
    scores = 2.0 * Lp * C * D  # Q Kᵀ
    solve = n * H * delta_inverse_flops(C, K) + 4.0 * Lp * C * D  # (I + A)⁻¹, then times [V, diag(γ)K]
    between = 8.0 * Lp * D * K  # W S, diag(γ)Q S, K_endᵀ U, and U₀ - W S
    # the decay's differences, exponentials and masks (XLA folds them away where α ≡ 1), β's scalings
    elementwise = 8.0 * H * Lp * C + 6.0 * Lp * D if gated else 2.0 * H * Lp * C + 2.0 * Lp * D
    return {"scores": scores, "mix": 2.0 * Lp * C * D + between + solve, "elementwise": elementwise}
