"""Lemmas A.1–A.7: two-layer GeLU MLPs with hand-set weights, their error bounds and norms; and
the ReLU nets of Lemma A.12's three layers (slots, position features, rescale, selection).

Every lemma here is built the way the paper (after Feng et al. 2023) proves it: write the target
as a small ReLU network, then trade ReLU for GeLU by Lemma A.2. Each function takes the lemma's
constants (M, ε, …), chooses the scale parameter from them — or takes it as an argument, so a
test can watch the error shrink as it grows — and returns a `LemmaMLP`: the weights, the scale,
the error the construction promises on the lemma's domain at that scale, and an ℓ∞ bound on its
parameters. The weights run through jaxdp's own `FFN` (activation "gelu", the exact erf form)
in `constructions.checks`; nothing here evaluates them.

The one fact behind A.2: with G(z) = z·Φ(z) (GeLU) and λ > 0,

    |G(λz)/λ − ReLU(z)| = |z|·Φ(−λ|z|) ≤ C_GELU / λ,   C_GELU = max_t t·Φ(−t) ≈ 0.16997,

uniformly in z; and when every pre-activation is 0 or has |z| ≥ γ (integer inputs, selections
with a margin) the error per unit is at most γ·Φ(−λγ), a Gaussian tail. A.3 needs no λ at all:
G(z) − G(−z) = z exactly.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from constructions.program import ReluNet
from constructions.residual import MLP


def _std_normal_tail(t: float) -> float:
    """Φ(−t), the standard normal upper tail."""
    return 0.5 * math.erfc(t / math.sqrt(2.0))


def _argmax_gap() -> float:
    """The t > 0 maximising t·Φ(−t): the root of Φ(−t) = t·φ(t), by bisection."""
    lo, hi = 0.1, 3.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _std_normal_tail(mid) - mid * math.exp(-mid * mid / 2) / math.sqrt(2 * math.pi) > 0:
            lo = mid
        else:
            hi = mid
    return lo


T_GELU = _argmax_gap()
C_GELU = T_GELU * _std_normal_tail(T_GELU)  # ≈ 0.16997: sup_z |GeLU(z) − ReLU(z)|


@dataclasses.dataclass(frozen=True)
class LemmaMLP:
    """A GeLU MLP realising a lemma, with what it promises.

    `error_bound`: the largest ℓ∞ error the construction guarantees on the lemma's domain at this
    `scale`; `norm_bound`: its stated bound on the ℓ∞ norm of the parameters.
    """

    lemma: str
    mlp: MLP
    scale: float
    scale_name: str
    error_bound: float
    norm_bound: float


def _row_sum(w2: np.ndarray) -> float:
    """max over outputs of Σ_units |w2|: how many unit errors one output coordinate can add up."""
    return float(np.abs(w2).sum(axis=0).max(initial=0.0))


def gelu_scale(relu: MLP, eps: float, margin: float = 0.0) -> float:
    """The λ of Lemma A.2 that makes `relu`'s GeLU twin ε-accurate.

    Without a margin: λ = C_GELU·s/ε with s the output row sum of |W2|. With one (every
    pre-activation on the domain is 0 or has |z| ≥ γ): the least λ with s·γ·Φ(−λγ) ≤ ε and
    λγ ≥ T_GELU, so λ grows only like sqrt(log(1/ε))/γ.
    """
    s = _row_sum(relu.w2)
    if s == 0.0:
        return 1.0
    if margin <= 0.0:
        return C_GELU * s / eps
    target = eps / (s * margin)
    lo, hi = T_GELU, 60.0
    if _std_normal_tail(lo) <= target:
        return lo / margin
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if _std_normal_tail(mid) <= target else (mid, hi)
    return hi / margin


def relu_to_gelu(
    relu: MLP, eps: float | None = None, *, lam: float | None = None, margin: float = 0.0, lemma: str = "A.2"
) -> LemmaMLP:
    """Lemma A.2: a ReLU MLP g with parameters bounded by M becomes a GeLU MLP f of the same size
    with ‖f(x) − g(x)‖∞ ≤ ε for every x, by f(x) = W2·G(λ(W1x + b1))/λ + b2.

    λ = C_GELU·s/ε (`gelu_scale`), s ≤ hidden·M, so the parameters are bounded by
    max(λ, 1/λ)·M = O(poly(M, 1/ε)). Give `margin` = γ when every pre-activation on the domain is
    0 or at least γ in size: then the bound is s·γ·Φ(−λγ).
    """
    if lam is None:
        if eps is None:
            raise ValueError("relu_to_gelu needs eps or lam")
        lam = gelu_scale(relu, eps, margin)
    s = _row_sum(relu.w2)
    if margin > 0.0 and lam * margin >= T_GELU:
        bound = s * margin * _std_normal_tail(lam * margin)
    else:
        bound = s * C_GELU / lam
    gelu = MLP(relu.w1 * lam, relu.b1 * lam, relu.w2 / lam, relu.b2.copy())
    return LemmaMLP(lemma, gelu, lam, "λ", bound, max(lam, 1.0 / lam) * relu.norm())


# ------------------------------------------------------------------------------ A.1, A.3


def product_scale(M: float, eps: float) -> float:
    """κ for Lemma A.1: the least κ ≥ 2M with (2/3)·M⁴/κ² ≤ ε, i.e. κ = max(M²·sqrt(2/(3ε)), 2M)."""
    return max(M * M * math.sqrt(2.0 / (3.0 * eps)), 2.0 * M)


def product(M: float, eps: float | None = None, *, kappa: float | None = None) -> LemmaMLP:
    """Lemma A.1: |f(a, b) − a·b| ≤ ε for all a, b ∈ [−M, M], with 4 hidden GeLU units.

    G(z) + G(−z) = z·erf(z/√2) = sqrt(2/π)·(z² − z⁴/6 + …), an alternating series whose terms
    shrink for |z| < √6, and a·b = ((a+b)² − (a−b)²)/4. With inputs shrunk by 1/κ:

        f(a, b) = κ²·sqrt(π/2)/4 · [G(s) + G(−s) − G(d) − G(−d)],  s = (a+b)/κ,  d = (a−b)/κ,

    error ≤ ((a+b)⁴ + (a−b)⁴)/(24κ²) ≤ (2/3)·M⁴/κ² for κ ≥ 2M. The scale is κ
    (`product_scale`); the largest parameter is sqrt(π/2)·κ²/4 = O(M⁴/ε).
    """
    if kappa is None:
        kappa = product_scale(M, eps)
    if kappa < 2 * M:
        raise ValueError(f"product: kappa={kappa} must be at least 2M={2 * M} (series regime)")
    w1 = np.array([[1.0, -1.0, 1.0, -1.0], [1.0, -1.0, -1.0, 1.0]]) / kappa
    c = kappa**2 * math.sqrt(math.pi / 2.0) / 4.0
    w2 = np.array([[c], [c], [-c], [-c]])
    mlp = MLP(w1, np.zeros(4), w2, np.zeros(1))
    return LemmaMLP("A.1", mlp, kappa, "κ", (2.0 / 3.0) * M**4 / kappa**2, max(c, 1.0 / kappa))


def linear(W: np.ndarray) -> LemmaMLP:
    """Lemma A.3: f(x) = W·x for every x ∈ R^{d1}, with 2·d2 hidden GeLU units.

    Exact, because G(z) − G(−z) = z·(Φ(z) + Φ(−z)) = z: f(x) = G(Wx) − G(−Wx). No scale
    parameter is needed (λ = 1), the error is rounding only, and the norm is max(max|W|, 1).
    """
    W = np.atleast_2d(np.asarray(W, np.float64))
    d_out = W.shape[0]
    eye = np.eye(d_out)
    mlp = MLP(
        np.concatenate([W.T, -W.T], axis=1), np.zeros(2 * d_out), np.concatenate([eye, -eye], axis=0), np.zeros(d_out)
    )
    return LemmaMLP("A.3", mlp, 1.0, "λ", 0.0, max(float(np.abs(W).max(initial=0.0)), 1.0))


# ----------------------------------------------------------------------------------- A.4


def select_relu(d: int, M: float, alpha: float) -> MLP:
    """The ReLU net behind Lemma A.4 on input (x, y, t) ∈ R^d × R^d × R, with β = 2M/α:

        x·[t ≥ α]  = ReLU(x + βt + M) − ReLU(βt + M)
        y·[t ≤ −α] = ReLU(y − βt + M) − ReLU(−βt + M)

    (for t ≥ α both units of the x pair are in their linear part and differ by x; for t ≤ −α
    both are 0; and mirrored for y). 2d + 2 hidden units."""
    beta = 2.0 * M / alpha
    h = 2 * d + 2
    w1 = np.zeros((2 * d + 1, h))
    b1 = np.full(h, M)
    w2 = np.zeros((h, d))
    for k in range(d):
        w1[k, k], w1[2 * d, k] = 1.0, beta  # x_k + βt + M
        w1[d + k, d + 1 + k], w1[2 * d, d + 1 + k] = 1.0, -beta  # y_k − βt + M
        w2[k, k], w2[d + 1 + k, k] = 1.0, 1.0
    w1[2 * d, d], w1[2 * d, 2 * d + 1] = beta, -beta  # βt + M and −βt + M
    w2[d, :], w2[2 * d + 1, :] = -1.0, -1.0
    return MLP(w1, b1, w2, np.zeros(d))


def select(d: int, M: float, alpha: float, eps: float | None = None, *, lam: float | None = None) -> LemmaMLP:
    """Lemma A.4: ‖f(x, y, t) − (x if t ≥ 0 else y)‖∞ ≤ ε for x, y ∈ [−M, M]^d and |t| ≥ α,
    with 2d + 2 hidden GeLU units: `select_relu` through Lemma A.2.

    Each output sums four units, so λ = 4·C_GELU/ε; parameters are bounded by
    λ·max(2M/α, M, 1) = O(poly(M, 1/α, 1/ε)). Inside the gap (|t| < α) nothing is promised:
    at t = 0 the net returns x + y.
    """
    return relu_to_gelu(select_relu(d, M, alpha), eps, lam=lam, lemma="A.4")


# ------------------------------------------------------------------------------ A.5 – A.7


def _ramp_pairs(slopes: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Units ReLU(a·x + o + 1) and ReLU(a·x + o) side by side (2 per ramp), for scalar x."""
    w1 = np.stack([slopes, slopes], axis=1).reshape(1, -1)
    b1 = np.stack([offsets + 1.0, offsets], axis=1).reshape(-1)
    return w1, b1


def steps_relu(n: int, descending: bool) -> MLP:
    """The ReLU nets of Lemmas A.5/A.6 on x ∈ S_i = [i − 1/3, i + 1/3], i ∈ {0, …, n}.

    A.5 (ascending): entry k of m_i is [k ≤ i] = ReLU(3(x − k) + 2) − ReLU(3(x − k) + 1).
    A.6 (descending): entry k of n_i is [k ≥ i] = ReLU(3(k − x) + 2) − ReLU(3(k − x) + 1).
    (On S_i, x − k ≥ −1/3 when k ≤ i and ≤ −2/3 when k > i, so each pair is exactly 1 or 0.
    The paper's eq. (12) uses slope 2 and offsets 3/4, 1/4, which are exact only at x = i.)
    """
    k = np.arange(1, n + 1, dtype=np.float64)
    sign = -1.0 if descending else 1.0
    w1, b1 = _ramp_pairs(np.full(n, 3.0 * sign), -3.0 * sign * k + 1.0)
    w2 = np.zeros((2 * n, n))
    w2[0::2, :][np.arange(n), np.arange(n)] = 1.0
    w2[1::2, :][np.arange(n), np.arange(n)] = -1.0
    return MLP(w1, b1, w2, np.zeros(n))


def steps(n: int, eps: float | None = None, *, descending: bool = False, lam: float | None = None) -> LemmaMLP:
    """Lemma A.5 (m_i: the first i entries 1) or, with `descending`, Lemma A.6 (n_i: the first
    i − 1 entries 0, the rest 1), ε-accurate on ∪_{i=0}^{n} [i − 1/3, i + 1/3] with 2n hidden
    GeLU units. Each entry is a difference of two units, so λ = 2·C_GELU/ε and the parameters are
    bounded by λ·(3n + 2) = O(n/ε)."""
    return relu_to_gelu(steps_relu(n, descending), eps, lam=lam, lemma="A.6" if descending else "A.5")


def ceil_div_relu(n: int, q_max: int) -> MLP:
    """The ReLU net of Lemma A.7 on x ∈ [i − 1/4, i + 1/4], i ∈ [1, n·q_max]:

        ⌈i/n⌉ = 1 + Σ_{j=1}^{q_max−1} [i ≥ jn + 1],
        [i ≥ jn + 1] = ReLU(2(x − jn) − 1/2) − ReLU(2(x − jn) − 3/2)   (eq. (14), re-centred),
        r = x − n·(⌈i/n⌉ − 1),   x = ReLU(x) − ReLU(−x).

    Outputs (⌈i/n⌉, ⌈i/n⌉ − 1, r): 2·q_max hidden units, O(n) for the paper's q_max = n.
    At x = i, r = n − (⌈i/n⌉·n − i) exactly; elsewhere on S_i it carries x − i along. No
    two-layer net with O(n) units can do better: a 1-D piecewise-linear function with h + 1
    pieces cannot be constant on n² separated intervals while changing value between each.
    """
    j = np.arange(1, q_max, dtype=np.float64)
    w1, b1 = _ramp_pairs(np.full(q_max - 1, 2.0), -2.0 * j * n - 1.5)
    w1 = np.concatenate([w1, [[1.0, -1.0]]], axis=1)
    b1 = np.concatenate([b1, [0.0, 0.0]])
    steps_ = np.tile([1.0, -1.0], q_max - 1)
    w2 = np.zeros((w1.shape[1], 3))
    w2[:-2, 0] = w2[:-2, 1] = steps_
    w2[:-2, 2] = -n * steps_
    w2[-2:, 2] = [1.0, -1.0]
    return MLP(w1, b1, w2, np.array([1.0, 0.0, 0.0]))


def ceil_div(n: int, eps: float | None = None, *, q_max: int | None = None, lam: float | None = None) -> LemmaMLP:
    """Lemma A.7: (⌈i/n⌉, ⌈i/n⌉ − 1, n − (⌈i/n⌉·n − i)) for x ∈ [i − 1/4, i + 1/4], integer
    i ∈ [1, n·q_max] (the paper: q_max = n), with 2·q_max hidden GeLU units (`ceil_div_relu`).

    The third output is ε-close to x − n(⌈i/n⌉ − 1), which is the lemma's value at x = i.
    λ = C_GELU·(2 + 2n(q_max − 1))/ε; parameters are bounded by λ·2n·q_max = O(poly(n, 1/ε)).
    """
    q_max = n if q_max is None else q_max
    return relu_to_gelu(ceil_div_relu(n, q_max), eps, lam=lam, lemma="A.7")


# ------------------------------------------------------------------------- A.12's MLPs


def bits(n: int) -> int:
    """How many bits hold the integers 0 .. n − 1 (at least 1)."""
    return max(1, int(n - 1).bit_length())


def slot_spread(d: int, B: int, M: float) -> MLP:
    """Layer 1: (v, i mod B) -> B slots of size d, v in slot (i mod B), zeros elsewhere.

    With the gate v·[r ≥ t] = ReLU(v + 2M + 4M(r − t)) − ReLU(2M + 4M(r − t)), slot
    s = v·[r ≥ s] − v·[r ≥ s + 1]. For integer r and |v| ≤ M every pre-activation is at least M
    away from 0."""
    net = ReluNet(d + 1, B * d)
    r = d
    for t in range(B):
        shared = net.unit({r: 4 * M}, 2 * M - 4 * M * t)
        for k in range(d):
            u = net.unit({k: 1.0, r: 4 * M}, 2 * M - 4 * M * t)
            for s, sign in ((t, 1.0), (t - 1, -1.0)):  # +gate_t into slot t, −gate_t into slot t−1
                if 0 <= s < B:
                    net.emit(s * d + k, u, sign), net.emit(s * d + k, shared, -sign)
    return net.mlp()


def position_features(B: int, C: int) -> MLP:
    """Layer 1: (r = i mod B, c = ⌈i/B⌉) -> (is_sum, sum_c, f, c², rating, bits of n_i − 1).

    is_sum = [r = 0] (i is its block's summary token), sum_c = c·is_sum, f = ⌊i/B⌋ = c − 1 + is_sum,
    rating = i's place in its block (1..B), n_i = min(i, B) (the size of i's local window). All
    inputs are integers, so every pre-activation is an integer: 0 (where GeLU is exact) or ≥ 1."""
    nb = bits(B)
    net = ReluNet(2, 5 + nb)
    r, c = 0, 1
    u_r, u_r1 = net.unit({r: 1.0}, 0.0), net.unit({r: 1.0}, -1.0)
    u_sc, u_c = net.unit({c: 1.0, r: -2.0 * C}, 0.0), net.unit({c: 1.0}, 0.0)
    net.b2[0] = 1.0  # is_sum = 1 − ReLU(r) + ReLU(r − 1)
    net.emit(0, u_r, -1.0), net.emit(0, u_r1, 1.0)
    net.emit(1, u_sc, 1.0)  # sum_c = ReLU(c − 2C·r)
    net.emit(2, u_c, 1.0), net.emit(2, u_r, -1.0), net.emit(2, u_r1, 1.0)  # f
    net.emit(3, u_c, 1.0)  # c² = c + 2·Σ_{t≥1} ReLU(c − t) at integers
    for t in range(1, C):
        net.emit(3, net.unit({c: 1.0}, -float(t)), 2.0)
    net.b2[4] = B  # rating = r + B·is_sum
    net.emit(4, u_r, 1.0 - B), net.emit(4, u_r1, float(B))
    # bit_b(n_i − 1) = bit_b(B − 1) + [c = 1 ∧ r ≥ 1]·(bit_b(r − 1) − bit_b(B − 1)), the product
    # telescoped over steps [c = 1 ∧ r ≥ t] = ReLU(r − t + 1 − B(c − 1)) − ReLU(r − t − B(c − 1)).
    bit = lambda x, b: float((x >> b) & 1)  # noqa: E731
    for b in range(nb):
        net.b2[5 + b] = bit(B - 1, b)
    for t in range(1, B):
        hi = net.unit({r: 1.0, c: -float(B)}, -t + 1.0 + B)
        lo = net.unit({r: 1.0, c: -float(B)}, -t + 0.0 + B)
        for b in range(nb):
            step = bit(t - 1, b) - (bit(t - 2, b) if t >= 2 else bit(B - 1, b))
            if step:
                net.emit(5 + b, hi, step), net.emit(5 + b, lo, -step)
    return net.mlp()


def gated_sum(d_u: int, nb: int, M: float) -> MLP:
    """Layer 2: (o, bits) -> o·Σ_b 2^b·bit_b, with o·bit = ReLU(o + 2M' + 4M'(bit − 1)) −
    ReLU(2M' + 4M'(bit − 1)), M' = 2M: rescales the window average by n_i − 1 (added to o)."""
    Mp = 2.0 * M
    net = ReluNet(d_u + nb, d_u)
    for b in range(nb):
        shared = net.unit({d_u + b: 4 * Mp}, 2 * Mp - 4 * Mp)
        for k in range(d_u):
            u = net.unit({k: 1.0, d_u + b: 4 * Mp}, 2 * Mp - 4 * Mp)
            net.emit(k, u, 2.0**b), net.emit(k, shared, -(2.0**b))
    return net.mlp()


def ceil_square(B: int, C: int) -> MLP:
    """Layer 2: p -> ⌈p/B⌉² = 1 + Σ_{j=1}^{C−1} (2j + 1)·[p ≥ jB + 1], with the ramps of A.7."""
    net = ReluNet(1, 1)
    net.b2[0] = 1.0
    for j in range(1, C):
        hi, lo = net.unit({0: 2.0}, -2.0 * j * B - 0.5), net.unit({0: 2.0}, -2.0 * j * B - 1.5)
        net.emit(0, hi, 2.0 * j + 1), net.emit(0, lo, -(2.0 * j + 1))
    return net.mlp()


def select_slot(d: int, B: int, M: float) -> MLP:
    """Layer 3: (B slots u_s, pr) -> u_s for the s with s ≡ pr (mod B), pr ∈ [1, B]: the gates
    u·[pr ≥ t] of `slot_spread` with M' = 2M, slot s ↔ t_s = s (s ≥ 1), t_0 = B."""
    Mp = 2.0 * M
    net = ReluNet(B * d + 1, d)
    pr = B * d
    shared = {t: net.unit({pr: 4 * Mp}, 2 * Mp - 4 * Mp * t) for t in range(1, B + 1)}
    for s in range(B):
        t_s = s if s else B
        for t, sign in ((t_s, 1.0), (t_s + 1, -1.0)):
            if t > B:
                continue
            for k in range(d):
                u = net.unit({s * d + k: 1.0, pr: 4 * Mp}, 2 * Mp - 4 * Mp * t)
                net.emit(k, u, sign), net.emit(k, shared[t], -sign)
    return net.mlp()
