"""Lemmas A.8, A.9, A.11 and A.12: attention layers with hand-set weights, as `HandSet`s of
jaxdp `Block`s (the model's own kernels do the mixing).

* A.8  the linear-attention recurrence (16)–(19) equals eq. (15): `linear_recurrence` is an
       independent float64 loop to hold the model's three linear forms against.
* A.9  AGG: one linear-attention head averages the tokens of a chosen block of m (`agg`).
* A.11 COPY: one softmax head copies the value of the matching token with the highest rating,
       under Assumption A.10 (`copy_head`, `copy_softmax`).
* A.12 COPY by a 3-layer sparse transformer: token i gets the value of token p_i ≤ i for any
       target index, with block size B and one summary token per block (`copy_sparse`).

The query maps are multiplied by sqrt(K) to undo the kernels' 1/sqrt(K) score scale.
"""

from __future__ import annotations

import math

import numpy as np

from constructions.handset import HandSet, construction_config
from constructions.mlp import (
    LemmaMLP,
    bits,
    ceil_div_relu,
    ceil_square,
    gated_sum,
    position_features,
    relu_to_gelu,
    select_slot,
    slot_spread,
)
from constructions.residual import Layout, attention_params, block_params, ffn_params, zero_ffn
from jaxdp.models import default_block_size

# ----------------------------------------------------------------------------------- A.8


def phi(x: np.ndarray) -> np.ndarray:
    """φ(x) = elu(x) + 1 (eq. (7)), computed as x + 1 for x > 0 and exp(x) otherwise."""
    return np.where(x > 0, x + 1.0, np.exp(np.minimum(x, 0.0)))


def linear_recurrence(q_BxLxHxK: np.ndarray, k_BxLxHxK: np.ndarray, v_BxLxHxK: np.ndarray) -> np.ndarray:
    """Lemma A.8, eqs. (16)–(19), one position at a time in float64:

    s_0 = 0, z_0 = 0,  s_i = s_{i−1} + φ(k_i) v_iᵀ,  z_i = z_{i−1} + φ(k_i),
    Attn(x_i)ᵀ = φ(q_i)ᵀ s_i / φ(q_i)ᵀ z_i.
    """
    q, k, v = (np.asarray(a, np.float64) for a in (q_BxLxHxK, k_BxLxHxK, v_BxLxHxK))
    Bt, L, H, K = q.shape
    s = np.zeros((Bt, H, K, v.shape[-1]))
    z = np.zeros((Bt, H, K))
    out = np.zeros_like(v)
    for i in range(L):
        s = s + np.einsum("bhk,bhv->bhkv", phi(k[:, i]), v[:, i])
        z = z + phi(k[:, i])
        fq = phi(q[:, i])
        out[:, i] = np.einsum("bhk,bhkv->bhv", fq, s) / np.einsum("bhk,bhk->bh", fq, z)[..., None]
    return out


def random_linear_attention(D: int, num_heads: int, seed: int = 0) -> HandSet:
    """A.8's test subject: one linear-attention block with random weights (N(0, 1/D)) and a zero
    FFN, so block(x) = x + Attn(x). Its exact output is `linear_attention_reference`."""
    rng = np.random.default_rng(seed)
    layout = Layout(x=D)
    attn = {f"{m}.kernel": rng.normal(0, D**-0.5, (D, D)) for m in ("query", "key", "value", "out")}
    attn.update({f"{m}.bias": rng.normal(0, 0.1, D) for m in ("query", "key", "value", "out")})
    cfg = construction_config(layout, 1, mixer="linear", num_heads=num_heads, max_len=4096)
    params = block_params(attn, zero_ffn(layout, cfg.hidden_dim))
    return HandSet("A.8", cfg, layout, (params,), 1.0, "-", 0.0, float(max(np.abs(a).max() for a in attn.values())))


def linear_attention_reference(handset: HandSet, x_BxLxD: np.ndarray) -> np.ndarray:
    """x + Attn(x) for `random_linear_attention`'s block, through `linear_recurrence`."""
    p = handset.blocks[0]
    H = handset.config.num_heads
    x = np.asarray(x_BxLxD, np.float64)
    heads = [
        (x @ p[f"attn.{m}.kernel"] + p[f"attn.{m}.bias"]).reshape(*x.shape[:2], H, -1)
        for m in ("query", "key", "value")
    ]
    o = linear_recurrence(*heads).reshape(x.shape)
    return x + o @ p["attn.out.kernel"] + p["attn.out.bias"]


# ----------------------------------------------------------------------------------- A.9


def agg_scale(M: float, m: int, K: int, eps: float) -> float:
    """μ = ln(2·M·m²·K/ε); with head size K = m this is the paper's μ = ln(2Mm³/ε)."""
    return math.log(2.0 * M * m * m * K / eps)


def agg(d: int, m: int, M: float, eps: float | None = None, *, mu: float | None = None) -> HandSet:
    """Lemma A.9 (AGG): for x_i = (x̂_i, e_⌈i/m⌉, e_{q_i}), i ≤ m², one linear-attention head
    returns o_i with ‖o_i − mean_{j ∈ S_i} x̂_j‖∞ ≤ ε, S_i = {j ≤ i : ⌈j/m⌉ = q_i}.

    Query μ·e_{q_i} − μ, key μ·e_⌈j/m⌉ − μ, value x̂_j, in a head of size K = max(d, m) (the
    other heads are inert). With φ(0) = 1 and φ(−μ) = e^{−μ}, a matching key scores
    1 + (K−1)e^{−2μ} ≥ 1 and any other at most 2e^{−μ} + (K−2)e^{−2μ} ≤ K·e^{−μ}; the paper's
    argument then bounds the error by 2·M·m²·K·e^{−μ}, which `agg_scale` makes ε. (The paper's
    text writes the matching score as 1 + (m−1)e^{−μ}; it is e^{−2μ}, and only "≥ 1" is used.)
    Parameters are bounded by max(μ, 1) = O(log(M·m/ε)).
    """
    K = max(d, m)
    if mu is None:
        mu = agg_scale(M, m, K, eps)
    layout = Layout(xhat=d, block=m, query=m, out=d).padded(K)
    H = layout.dim // K
    head = agg_head(layout, mu, K, query="query", key="block", values=layout.indices("xhat"), out="out")
    cfg = construction_config(layout, 1, mixer="linear", num_heads=H, max_len=m * m)
    params = block_params(attention_params(layout, H, {0: head}), zero_ffn(layout, cfg.hidden_dim))
    bound = 2.0 * M * m * m * K * math.exp(-mu)
    return HandSet("A.9", cfg, layout, (params,), mu, "μ", bound, max(mu, 1.0))


def agg_head(layout: Layout, mu: float, head_size: int, *, query: str, key: str, values: np.ndarray, out: str) -> dict:
    """One AGG head (Lemma A.9): query μ·e_q − μ from the one-hot subspace `query`, key
    μ·e_b − μ from the one-hot subspace `key`, value the residual coordinates `values`, added
    into subspace `out`."""
    D, K, m = layout.dim, head_size, layout.size(query)
    if layout.size(key) != m or K < max(m, len(values)):
        raise ValueError(
            f"agg_head: one-hots {m}/{layout.size(key)} and {len(values)} values need a head "
            f"of size at least {max(m, len(values))}, got {K}"
        )
    q, k, v, o = np.zeros((D, K)), np.zeros((D, K)), np.zeros((D, K)), np.zeros((K, D))
    q[layout.indices(query), np.arange(m)] = mu
    k[layout.indices(key), np.arange(m)] = mu
    v[values, np.arange(len(values))] = 1.0
    o[np.arange(len(values)), layout.indices(out)] = 1.0
    return dict(query=q, key=k, value=v, out=o, query_bias=np.full(K, -mu), key_bias=np.full(K, -mu))


# ---------------------------------------------------------------------------------- A.11


def copy_gap(rho: float, delta: float, rating_range: float) -> tuple[float, float]:
    """(θ, gap) for COPY: scores λ·(q_i·k_j + θ·r_j) with θ = 3δ/(4R), R the spread of the
    ratings (the paper's 2M). Under Assumption A.10 the best match beats another match by
    λ(θδ − 2ρ) and any non-match by λ(δ − ρ − θR); gap is the smaller, ≥ δ²/(4R) when
    ρ ≤ δ²/(4R) (the paper's ρ ≤ δ²/(8M))."""
    theta = 3.0 * delta / (4.0 * rating_range)
    gap = min(theta * delta - 2.0 * rho, delta - rho - theta * rating_range)
    if gap <= 0:
        raise ValueError(
            f"copy: Assumption A.10 fails (rho={rho}, delta={delta}, rating range "
            f"{rating_range}): needs rho <= delta^2/(4R)"
        )
    return theta, gap


def copy_scale(rho: float, delta: float, rating_range: float, M_v: float, n: int, eps: float) -> float:
    """λ = ln(2·M_v·n/ε)/gap, so that 2·M_v·(n−1)·e^{−λ·gap} ≤ ε."""
    return math.log(2.0 * M_v * max(n, 2) / eps) / copy_gap(rho, delta, rating_range)[1]


def copy_head(
    layout: Layout,
    Q: np.ndarray,
    K: np.ndarray,
    V: np.ndarray,
    rating: np.ndarray,
    out: str,
    *,
    rho: float,
    delta: float,
    rating_range: float,
    M_v: float,
    n: int,
    eps: float | None = None,
    lam: float | None = None,
    q_bias=None,
    k_bias=None,
    head_size: int | None = None,
) -> tuple[dict, float, float, float]:
    """One softmax head (H = 1, head size D) doing COPY (Lemma A.11) on the residual stream.

    q_i = Q x_i + q_bias, k_j = K x_j + k_bias ([d', D] maps), v_j = V x_j ([d_v, D]),
    r_j = rating · x_j; the head scores λ·(q_i·k_j + θ·r_j) (`copy_gap`) and adds v_{pos(i)}
    into subspace `out`. With at most n keys per query and ‖v‖∞ ≤ M_v the error is at most
    2·M_v·(n − 1)·e^{−λ·gap}. The head has size `head_size` (default D, one head).
    Returns (head dict, λ, error bound, parameter ℓ∞ norm).
    """
    D = layout.dim
    Kh = D if head_size is None else head_size
    dq, dv = Q.shape[0], V.shape[0]
    if Kh < dq + 1 or Kh < dv:
        raise ValueError(f"copy_head: a head of size {Kh} cannot hold {dq}+1 query features and {dv} values")
    theta, gap = copy_gap(rho, delta, rating_range)
    if lam is None:
        lam = copy_scale(rho, delta, rating_range, M_v, n, eps)
    s = math.sqrt(Kh)
    q_bias = np.zeros(dq) if q_bias is None else np.asarray(q_bias, np.float64)
    k_bias = np.zeros(dq) if k_bias is None else np.asarray(k_bias, np.float64)
    query, key, value = np.zeros((D, Kh)), np.zeros((D, Kh)), np.zeros((D, Kh))
    query[:, :dq] = s * lam * Q.T
    key[:, :dq], key[:, dq] = K.T, rating
    value[:, :dv] = V.T
    qb, kb = np.zeros(Kh), np.zeros(Kh)
    qb[:dq], qb[dq] = s * lam * q_bias, s * lam * theta
    kb[:dq] = k_bias
    out_map = np.zeros((Kh, D))
    out_map[np.arange(dv), layout.indices(out)] = 1.0
    head = dict(query=query, key=key, value=value, out=out_map, query_bias=qb, key_bias=kb)
    bound = 2.0 * M_v * (max(n, 1) - 1) * math.exp(-lam * gap)
    norm = max(float(np.abs(a).max(initial=0.0)) for a in head.values())
    return head, lam, bound, norm


def copy_softmax(
    Q: np.ndarray,
    K: np.ndarray,
    V: np.ndarray,
    rating: np.ndarray,
    *,
    rho: float,
    delta: float,
    M: float,
    n: int,
    eps: float | None = None,
    lam: float | None = None,
) -> HandSet:
    """Lemma A.11: one standard-attention head with u_i = v_{pos(i)}, pos(i) = argmax_{j ∈ S_i}
    r_j, S_i = {j ≤ i : |q_i·k_j| ≤ ρ}, up to ε, for inputs x ∈ [−M, M]^{d_x} (subspace `x`)
    satisfying Assumption A.10 with ρ ≤ δ²/(8M) and ‖V‖∞ ≤ 1; the output lands in `out`.

    Our S_i includes j = i, which a causal head sees; the paper's j < i is the case of a token
    that never matches itself. λ = (ln(2Mn/ε))/gap ≤ 8M·ln(2Mn/ε)/δ² (`copy_gap`), so the
    parameters are O(poly(M, 1/δ, log n, log 1/ε)) as the lemma states.
    """
    dq, dx = Q.shape
    dv = V.shape[0]
    layout = Layout(x=dx, out=dv)
    layout = Layout(x=dx, out=dv, spare=dq + 1 - layout.dim) if layout.dim < dq + 1 else layout
    embed = lambda A: np.pad(A, ((0, 0), (0, layout.dim - dx)))  # noqa: E731  (x comes first)
    r = np.zeros(layout.dim)
    r[:dx] = rating
    M_v = M * max(1.0, float(np.abs(V).sum(axis=1).max()))
    head, lam, bound, norm = copy_head(
        layout,
        embed(Q),
        embed(K),
        embed(V),
        r,
        "out",
        rho=rho,
        delta=delta,
        rating_range=2.0 * M,
        M_v=M_v,
        n=n,
        eps=eps,
        lam=lam,
    )
    cfg = construction_config(layout, 1, mixer="standard", max_len=n)
    params = block_params(attention_params(layout, 1, {0: head}), zero_ffn(layout, cfg.hidden_dim))
    return HandSet("A.11", cfg, layout, (params,), lam, "λ", bound, norm)


# ---------------------------------------------------------------------------------- A.12


def window_head(
    layout: Layout, lam2: float, head_size: int | None = None, *, slots: str = "slots", window: str = "window"
) -> dict:
    """A.12 layer 2 as one head: uniform attention over the local window (score 0); summary
    tokens of older blocks (⌈j/B⌉ < ⌊i/B⌋) scored at most −λ₂. It averages subspace `slots`
    into `window`, reading the position features `f`, `sum_c`, `is_sum` (`position_features`)."""
    D = layout.dim
    Kh = D if head_size is None else head_size
    s, n = math.sqrt(Kh), layout.size(slots)
    query, key, value, out = np.zeros((D, Kh)), np.zeros((D, Kh)), np.zeros((D, Kh)), np.zeros((Kh, D))
    query[layout.indices("f"), 1] = -s * lam2
    qb = np.zeros(Kh)
    qb[0] = s * lam2
    key[layout.indices("sum_c"), 0] = key[layout.indices("is_sum"), 1] = 1.0
    value[layout.indices(slots), np.arange(n)] = 1.0
    out[np.arange(n), layout.indices(window)] = 1.0
    return dict(query=query, key=key, value=value, out=out, query_bias=qb)


def block_copy_head(
    layout: Layout,
    *,
    B: int,
    C: int,
    eta: float,
    M: float,
    eps: float,
    values: np.ndarray,
    out: str,
    b: str = "b",
    b2: str = "b2",
    head_size: int | None = None,
) -> tuple[dict, float, float, float]:
    """A.12 layer 3 as one COPY head (Lemma A.11, `copy_head`): from the latest visible token j
    of block `b` = ⌈p/B⌉ (q = (2b, −b², −1), k = (c, 1, c²), so q·k = −(c − b)²; rating = j's
    place in its block, 1..B), copy the residual coordinates `values` into subspace `out`.
    `eta` bounds the errors of the integer features, which only enter through ρ; `M` bounds
    the copied values."""
    D = layout.dim
    rows = lambda *names: layout.indices(list(names))  # noqa: E731
    Q, K = np.zeros((3, D)), np.zeros((3, D))
    Q[0, rows(b)], Q[1, rows(b2)] = 2.0, -1.0
    K[0, rows("cblk")], K[2, rows("c2")] = 1.0, 1.0
    V = np.zeros((len(values), D))
    V[np.arange(len(values)), values] = 1.0
    rating = np.zeros(D)
    rating[rows("rating")] = 1.0
    rho = eta * (2.0 * C + 3.0)
    return copy_head(
        layout,
        Q,
        K,
        V,
        rating,
        out,
        rho=rho,
        delta=1.0 - 2 * rho,
        rating_range=max(B - 1, 1),
        M_v=M,
        n=B + C,
        eps=eps,
        q_bias=[0.0, 0.0, -1.0],
        k_bias=[0.0, 1.0, 0.0],
        head_size=head_size,
    )


def _a12_mlps(d: int, B: int, C: int, M: float, eps: float) -> tuple[LemmaMLP, ...]:
    """A.12's six MLPs (spread, position features, rescale, ⌈p/B⌉, ⌈p/B⌉², selection), GeLU.

    Error budget: slots and selection ε/8 each, rescale ε/8, the two attentions ε/4 each; the
    integer features get a share so small that their errors only matter through ρ."""
    eta_f = eps * 1e-6 / (8.0 * (C + 3))
    return (
        relu_to_gelu(slot_spread(d, B, M), eps / (8.0 * B), margin=M),
        relu_to_gelu(position_features(B, C), eta_f, margin=1.0),
        relu_to_gelu(gated_sum(B * d, bits(B), M), eps / 8.0, margin=M),
        relu_to_gelu(ceil_div_relu(B, C), eta_f, margin=0.5),
        relu_to_gelu(ceil_square(B, C), eta_f, margin=0.5),
        relu_to_gelu(select_slot(d, B, M), eps / 8.0, margin=M),
    )


def _window_attention(layout: Layout, M: float, C: int, eps: float, eta: float) -> tuple[dict, float, float]:
    """A.12 layer 2's attention (`window_head`), its λ₂ and its error: the leak of C older
    summary tokens, plus what feature errors ≤ η do to the window's scores."""
    lam2 = math.log(2.0 * M * C / (eps / 4.0))
    err = 2.0 * M * C * math.exp(-lam2)
    delta2 = lam2 * eta * (C + 3)  # feature errors move the window's scores by at most this
    err += M * (math.exp(2 * delta2) - 1.0)
    return attention_params(layout, 1, {0: window_head(layout, lam2)}), lam2, err


def copy_sparse(L: int, d: int, M: float, eps: float, B: int | None = None) -> HandSet:
    """Lemma A.12: three sparse-attention layers (eq. (6), block size B, one summary token per
    block, local window B) that give token i the value v_{p_i} of any target p_i ≤ i, up to ε.

    Input x_i = (v_i, p_i, i mod B, ⌈i/B⌉) with v_i ∈ [−M, M]^d. Our realisation of the proof:

    1. FFN (`slot_spread`, `position_features`): v_i into slot (i mod B) of B slots; integer
       position features (summary flag, ⌊i/B⌋, ⌈i/B⌉², place in block, bits of min(i, B) − 1).
    2. Attention: uniform over the local window (score 0), older summary tokens scored
       −λ₂·(⌊i/B⌋ − ⌈j/B⌉) ≤ −λ₂; FFN: rescale the average to the window's sum. The paper
       multiplies by B; a window holds min(i, B) tokens, so we multiply by that (`gated_sum`),
       else the first block's tokens come out scaled by B/i. Also ⌈p/B⌉, p's place in its block
       (Lemma A.7, `ceil_div_relu`) and ⌈p/B⌉².
    3. Attention: COPY (Lemma A.11, `copy_head`) from the latest visible token j of block ⌈p/B⌉
       (q·k = −(⌈j/B⌉ − ⌈p/B⌉)², rating = j's place in its block): that is the block's summary
       token, whose window is the whole block, or i itself when p is in i's block. FFN: pick
       the slot of p (`select_slot`).

    Every MLP is a ReLU net with a margin turned into GeLU by Lemma A.2 (Gaussian-tail error).
    The bound adds the parts' errors; the scale reported is the COPY head's λ.
    """
    B = default_block_size(L) if B is None else B
    if B < 2:
        raise ValueError(f"copy_sparse: block size B={B} must be at least 2")
    C, nb = -(-L // B), bits(B)
    layout = _a12_layout(d, B, nb)
    spread, feats, rescale, ceil_p, square_p, select = mlps = _a12_mlps(d, B, C, M, eps)
    eta = max(feats.error_bound, ceil_p.error_bound, square_p.error_bound)
    hidden = max(
        spread.mlp.hidden + feats.mlp.hidden,
        rescale.mlp.hidden + ceil_p.mlp.hidden + square_p.mlp.hidden,
        select.mlp.hidden,
    )
    cfg = construction_config(
        layout,
        hidden,
        mixer="sparse",
        max_len=L,
        num_layers=3,
        options={"block_size": B, "local_blocks": 1, "global_tokens": 1},
    )

    attn2, lam2, err2 = _window_attention(layout, M, C, eps, eta)
    head3, lam3, err3, norm3 = block_copy_head(
        layout, B=B, C=C, eta=eta, M=M + eps, eps=eps / 4.0, values=layout.indices("window"), out="copied"
    )
    attn3 = attention_params(layout, 1, {0: head3})

    blocks = _a12_blocks(layout, cfg.hidden_dim, mlps, attn2, attn3)
    # The window's per-coordinate error: B slot errors, the rescale, the layer-2 leak, and the
    # bit errors through the gates; the COPY and the selection add theirs.
    err_bits = 8.0 * M * B * eta * nb
    bound = B * spread.error_bound + rescale.error_bound + err2 + err_bits + err3 + select.error_bound
    norm = max([m.norm_bound for m in mlps] + [math.sqrt(layout.dim) * lam2, norm3])
    return HandSet("A.12", cfg, layout, blocks, lam3, "λ", bound, norm)


def _a12_layout(d: int, B: int, nb: int) -> Layout:
    """Lemma A.12's residual stream: the input (v, p, i mod B, ⌈i/B⌉), B slots, the position
    features, the window's sum, ⌈p/B⌉ and its square, the copied window and the output."""
    return Layout(
        v=d,
        p=1,
        rmod=1,
        cblk=1,
        slots=B * d,
        is_sum=1,
        sum_c=1,
        f=1,
        c2=1,
        rating=1,
        nbits=nb,
        window=B * d,
        b=1,
        bm1=1,
        pr=1,
        b2=1,
        copied=B * d,
        out=d,
    )


def _a12_blocks(layout: Layout, H: int, mlps, attn2, attn3) -> tuple:
    """The three layers of Lemma A.12 (`copy_sparse`): each attention with its FFN's MLPs."""
    spread, feats, rescale, ceil_p, square_p, select = mlps
    return (
        block_params(
            attention_params(layout, 1, {}),
            ffn_params(
                layout,
                H,
                [
                    (spread.mlp, ["v", "rmod"], "slots"),
                    (feats.mlp, ["rmod", "cblk"], ["is_sum", "sum_c", "f", "c2", "rating", "nbits"]),
                ],
            ),
        ),
        block_params(
            attn2,
            ffn_params(
                layout,
                H,
                [
                    (rescale.mlp, ["window", "nbits"], "window"),
                    (ceil_p.mlp, "p", ["b", "bm1", "pr"]),
                    (square_p.mlp, "p", "b2"),
                ],
            ),
        ),
        block_params(attn3, ffn_params(layout, H, [(select.mlp, ["copied", "pr"], "out")])),
    )


def copy_sparse_inputs(layout: Layout, v_BxLxd: np.ndarray, p_BxL: np.ndarray, B: int) -> np.ndarray:
    """The residual stream x_i = (v_i, p_i, i mod B, ⌈i/B⌉) for `copy_sparse` (1-indexed i)."""
    Bt, L, _ = v_BxLxd.shape
    i = np.arange(1, L + 1, dtype=np.float64)
    pos = lambda a: np.broadcast_to(a[None, :, None], (Bt, L, 1))  # noqa: E731
    return layout.embed(
        v=v_BxLxd, p=np.asarray(p_BxL, np.float64)[..., None], rmod=pos(i % B), cblk=pos(np.ceil(i / B))
    )
