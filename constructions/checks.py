"""The case table: every lemma as a `Check` — how to build it for a problem size and an ε, how
to draw inputs from its domain (with the domain's edges), and the exact value the lemma
promises, computed independently of the construction (numpy closed forms, or A.8's loop).

`Check.measure(size, eps, dtype)` builds the hand-set blocks, runs them through jaxdp's modules
and returns a `Measurement` (largest ℓ∞ error, promised bound, parameter norm and its bound).
The tests in tests/constructions and `python -m constructions.report` both drive this table.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from constructions import attention as att
from constructions import mlp
from constructions.handset import HandSet, mlp_handset
from constructions.residual import MLP

Sample = tuple[np.ndarray, np.ndarray]  # (residual stream x_BxLxD, exact output)


@dataclasses.dataclass(frozen=True)
class Measurement:
    name: str
    lemma: str
    size: int
    eps: float
    dtype: str
    max_error: float
    error_bound: float
    norm: float
    norm_bound: float
    scale: float
    scale_name: str

    @property
    def ok(self) -> bool:
        """The lemma's promise held: error ≤ ε (and ≤ the construction's own bound, plus
        rounding of the exact identities)."""
        return bool(self.max_error <= self.eps)

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "ok": self.ok}


@dataclasses.dataclass(frozen=True)
class Check:
    """One lemma: `build(size, eps, scale)` -> HandSet (scale None: derived from (size, ε));
    `sample(handset, size, rng)` -> (x, exact); `read(handset, y)` -> the part of the output
    compared with `exact`. `size` is the problem size the precision study grows."""

    name: str
    lemma: str
    build: Callable[[int, float, float | None], HandSet]
    sample: Callable[[HandSet, int, np.random.Generator], Sample]
    read: Callable[[HandSet, np.ndarray], np.ndarray]
    sizes: tuple[int, ...]
    eps: float
    statement: str

    @property
    def size_label(self) -> str:
        """What `size` measures, from the statement's "(size: …)"."""
        return self.statement.rpartition("(size: ")[2].rstrip(")") or "size"

    @property
    def claim(self) -> str:
        """The statement without its "(size: …)" note."""
        return self.statement.rpartition(" (size: ")[0] or self.statement

    def measure(
        self,
        size: int,
        eps: float | None = None,
        dtype: str = "float64",
        *,
        seed: int = 0,
        scale: float | None = None,
        **forms,
    ) -> Measurement:
        eps = self.eps if eps is None else eps
        handset = self.build(size, eps, scale)
        x, exact = self.sample(handset, size, np.random.default_rng(seed))
        y = self.read(handset, handset(x, dtype, **forms))
        err = float(np.nanmax(np.abs(y - exact))) if np.isfinite(y).all() else math.inf
        return Measurement(
            self.name,
            self.lemma,
            size,
            eps,
            dtype,
            err,
            handset.error_bound,
            handset.norm(),
            handset.norm_bound,
            handset.scale,
            handset.scale_name,
        )


def _out(name: str) -> Callable[[HandSet, np.ndarray], np.ndarray]:
    return lambda hs, y: hs.layout.read(y, name)


def _mlp_inputs(hs: HandSet, x_Nxd: np.ndarray) -> np.ndarray:
    return hs.layout.embed(x=x_Nxd[None])


def _relu(net: MLP, x: np.ndarray) -> np.ndarray:
    return np.maximum(x @ net.w1 + net.b1, 0.0) @ net.w2 + net.b2


# ------------------------------------------------------------------------------ MLP lemmas


def _product_sample(hs, M, rng):
    ab = rng.uniform(-M, M, (512, 2))
    edges = np.array([[s * M, t * M] for s in (-1, 0, 1) for t in (-1, 0, 1)], np.float64)
    ab = np.concatenate([ab, edges])
    return _mlp_inputs(hs, ab), (ab[:, 0] * ab[:, 1])[None, :, None]


def _random_relu(width: int, seed: int = 0) -> MLP:
    """A.2's subject: a ReLU MLP R³ -> R² with `width` hidden units and parameters in [−1, 1]."""
    rng = np.random.default_rng(seed)
    return MLP(
        rng.uniform(-1, 1, (3, width)), rng.uniform(-1, 1, width), rng.uniform(-1, 1, (width, 2)), rng.uniform(-1, 1, 2)
    )


def _relu_sample(hs, width, rng):
    x = np.concatenate([rng.normal(0, 3, (512, 3)), rng.uniform(-1e3, 1e3, (64, 3)), np.zeros((1, 3))])
    return _mlp_inputs(hs, x), _relu(_random_relu(width), x)[None]


LINEAR_W = np.random.default_rng(1).uniform(-2, 2, (4, 5))  # A.3's matrix W (M = 2)


def _linear_sample(hs, R, rng):
    """x ∈ [−R, R]⁵: the lemma holds on all of R^{d1}; rounding grows with |x|."""
    x = np.concatenate([rng.uniform(-R, R, (512, 5)), np.full((1, 5), R), np.zeros((1, 5))])
    return _mlp_inputs(hs, x), (x @ LINEAR_W.T)[None]


SELECT_M, SELECT_ALPHA, SELECT_D = 2.0, 0.1, 4


def _select_sample(hs, T, rng):
    """x, y ∈ [−M, M]^d and α ≤ |t| ≤ T (log-uniform), with the edges |t| = α and |t| = T."""
    n, d = 512, SELECT_D
    x, y = rng.uniform(-SELECT_M, SELECT_M, (2, n, d))
    t = rng.choice([-1.0, 1.0], n) * np.exp(rng.uniform(np.log(SELECT_ALPHA), np.log(T), n))
    t[:4] = [SELECT_ALPHA, -SELECT_ALPHA, T, -T]
    x[:2], y[:2] = SELECT_M, -SELECT_M
    exact = np.where((t >= 0)[:, None], x, y)
    return _mlp_inputs(hs, np.concatenate([x, y, t[:, None]], axis=1)), exact[None]


def _steps_sample(descending):
    def sample(hs, n, rng):
        i = rng.integers(0, n + 1, 512).astype(np.float64)
        x = i + rng.uniform(-1 / 3, 1 / 3, 512)
        edge = np.arange(n + 1, dtype=np.float64)
        i = np.concatenate([i, edge, edge, edge])
        x = np.concatenate([x, edge - 1 / 3, edge + 1 / 3, edge])
        k = np.arange(1, n + 1)
        exact = (k[None, :] >= i[:, None]) if descending else (k[None, :] <= i[:, None])
        return _mlp_inputs(hs, x[:, None]), exact.astype(np.float64)[None]

    return sample


def _ceil_sample(hs, n, rng):
    i = np.concatenate([rng.integers(1, n * n + 1, 512), np.arange(1, n * n + 1)]).astype(np.float64)
    x = i + np.concatenate([rng.uniform(-0.25, 0.25, 512), np.zeros(n * n)])
    x[:4] = [0.75, 1.25, n * n - 0.25, n * n + 0.25]  # domain edges
    i[:4] = [1, 1, n * n, n * n]
    q = np.ceil(i / n)
    exact = np.stack([q, q - 1, x - n * (q - 1)], axis=1)
    return _mlp_inputs(hs, x[:, None]), exact[None]


# ------------------------------------------------------------------------- attention lemmas

A8_DIM, A8_HEADS = 8, 2


def _a8_sample(hs, L, rng):
    x = rng.normal(0, 1, (2, L, A8_DIM))
    return x, att.linear_attention_reference(hs, x)


AGG_D, AGG_M = 3, 1.0


def _agg_sample(hs, m, rng):
    n = m * m
    i = np.arange(1, n + 1)
    rows = 3
    xhat = rng.uniform(-AGG_M, AGG_M, (rows, n, AGG_D))
    xhat[0, :, 0] = AGG_M  # the domain's edge
    blk = np.ceil(i / m).astype(int)
    q = np.stack([rng.integers(1, blk + 1) for _ in range(rows)])  # a block that has started
    q[1] = blk  # the query's own (partial) block
    exact = np.zeros_like(xhat)
    for r in range(rows):
        for t in range(n):
            lo, hi = (q[r, t] - 1) * m, min(q[r, t] * m, t + 1)
            exact[r, t] = xhat[r, lo:hi].mean(axis=0)
    eye = np.eye(m)
    x = hs.layout.embed(xhat=xhat, block=np.broadcast_to(eye[blk - 1], (rows, n, m)), query=eye[q - 1])
    return x, exact


# A.11: keys carry a label a_j (an integer plus noise), queries a label b_i; q·k = −(a_j − b_i)²
# matches (≤ ρ) exactly when the labels agree, and ratings are distinct multiples of δ.
COPY_LABELS, COPY_DELTA, COPY_D = 4, 0.5, 2


def _copy_problem(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, float]:
    """(Q, K, V, rating, ρ, M) over x = (v ∈ R^d, a, a², b, b², r, 1)."""
    d = COPY_D
    dx = d + 6
    a, a2, b, b2, r, one = range(d, d + 6)
    Q, K = np.zeros((3, dx)), np.zeros((3, dx))
    Q[0, b], Q[1, b2], Q[2, one] = 2.0, -1.0, -1.0  # q = (2b, −b², −1)
    K[0, a], K[1, one], K[2, a2] = 1.0, 1.0, 1.0  # k = (a, 1, a²)
    V = np.zeros((d, dx))
    V[np.arange(d), np.arange(d)] = 1.0
    rating = np.zeros(dx)
    rating[r] = 1.0
    M = max(float(COPY_LABELS**2), COPY_DELTA * n / 2 + 1)
    rho = COPY_DELTA**2 / (8 * M)
    return Q, K, V, rating, rho, M


def _copy_build(n, eps, lam):
    Q, K, V, rating, rho, M = _copy_problem(n)
    return att.copy_softmax(Q, K, V, rating, rho=rho, delta=COPY_DELTA, M=M, n=n, eps=eps, lam=lam)


def _copy_sample(hs, n, rng):
    _, _, _, _, rho, M = _copy_problem(n)
    rows = 4
    noise = math.sqrt(rho) / 2  # |(a + η) − b|² ≤ ρ for a match
    a = rng.integers(0, COPY_LABELS, (rows, n)) + rng.uniform(-noise, noise, (rows, n))
    b = rng.integers(0, COPY_LABELS, (rows, n)).astype(np.float64)
    ratings = np.stack([rng.permutation(n) for _ in range(rows)]) * COPY_DELTA - COPY_DELTA * n / 2
    v = rng.uniform(-1, 1, (rows, n, COPY_D))
    x = np.concatenate([v, np.stack([a, a * a, b, b * b, ratings, np.ones_like(a)], -1)], -1)
    exact = np.full((rows, n, COPY_D), np.nan)
    for row in range(rows):
        for i in range(n):
            match = np.flatnonzero(np.abs(a[row, : i + 1] - b[row, i]) < 0.5)
            if match.size:
                exact[row, i] = v[row, match[np.argmax(ratings[row, match])]]
    return hs.layout.embed(x=x), exact


COPY_SPARSE_D, COPY_SPARSE_M = 2, 1.0


def copy_sparse_targets(L: int) -> np.ndarray:
    """Targets p [L rows, L positions] covering every pair (i, p ≤ i): row t, position i gets
    p = ((i + t) mod i) + 1 (1-indexed)."""
    i = np.arange(1, L + 1)
    return ((i[None, :] + np.arange(L)[:, None]) % i[None, :]) + 1


def _copy_sparse_sample(hs, L, rng):
    B = hs.config.options.block_size
    p = copy_sparse_targets(L)
    v = rng.uniform(-COPY_SPARSE_M, COPY_SPARSE_M, (L, L, COPY_SPARSE_D))
    v[:, 0] = COPY_SPARSE_M  # the domain's edge
    x = att.copy_sparse_inputs(hs.layout, v, p, B)
    return x, np.take_along_axis(v, (p - 1)[..., None], axis=1)


def _a8_build(L, eps, scale):
    return att.random_linear_attention(A8_DIM, A8_HEADS)


CHECKS: dict[str, Check] = {
    c.name: c
    for c in [
        Check(
            "product",
            "A.1",
            lambda M, eps, s: mlp_handset(mlp.product(M, eps, kappa=s)),
            _product_sample,
            _out("y"),
            (1, 4, 16, 64, 256),
            1e-3,
            "|f(a,b) − ab| ≤ ε on [−M, M]², 4 GeLU units (size: M)",
        ),
        Check(
            "relu_to_gelu",
            "A.2",
            lambda h, eps, s: mlp_handset(mlp.relu_to_gelu(_random_relu(h), eps, lam=s)),
            _relu_sample,
            _out("y"),
            (4, 16, 64, 256),
            1e-3,
            "a ReLU MLP by a GeLU MLP of the same width (size: width)",
        ),
        Check(
            "linear",
            "A.3",
            lambda R, eps, s: mlp_handset(mlp.linear(LINEAR_W)),
            _linear_sample,
            _out("y"),
            (1, 100, 10_000, 1_000_000),
            1e-3,
            "Wx exactly with 2·d_out GeLU units (size: input range |x|)",
        ),
        Check(
            "select",
            "A.4",
            lambda T, eps, s: mlp_handset(mlp.select(SELECT_D, SELECT_M, SELECT_ALPHA, eps, lam=s)),
            _select_sample,
            _out("y"),
            (1, 100, 10_000, 1_000_000),
            1e-3,
            "x if t ≥ 0 else y for |t| ≥ α = 0.1, 2d+2 GeLU units (size: largest |t|)",
        ),
        Check(
            "steps_up",
            "A.5",
            lambda n, eps, s: mlp_handset(mlp.steps(n, eps, lam=s)),
            _steps_sample(False),
            _out("y"),
            (4, 16, 64, 256),
            1e-3,
            "first i entries 1 on [i − 1/3, i + 1/3], 2n GeLU units (size: n)",
        ),
        Check(
            "steps_down",
            "A.6",
            lambda n, eps, s: mlp_handset(mlp.steps(n, eps, descending=True, lam=s)),
            _steps_sample(True),
            _out("y"),
            (4, 16, 64, 256),
            1e-3,
            "first i − 1 entries 0 on [i − 1/3, i + 1/3], 2n GeLU units (size: n)",
        ),
        Check(
            "ceil_div",
            "A.7",
            lambda n, eps, s: mlp_handset(mlp.ceil_div(n, eps, lam=s)),
            _ceil_sample,
            _out("y"),
            (4, 8, 16, 32),
            1e-3,
            "(⌈i/n⌉, ⌈i/n⌉ − 1, i mod n) for i ≤ n², 2n GeLU units (size: n)",
        ),
        Check(
            "recurrence",
            "A.8",
            _a8_build,
            _a8_sample,
            lambda hs, y: y,
            (16, 64, 256, 1024),
            1e-6,
            "the (s, z) recurrence equals eq. (8) (size: L)",
        ),
        Check(
            "agg",
            "A.9",
            lambda m, eps, s: att.agg(AGG_D, m, AGG_M, eps, mu=s),
            _agg_sample,
            _out("out"),
            (2, 4, 8, 16),
            1e-3,
            "one linear head averages block q_i, μ = ln(2Mm³/ε) (size: m, L = m²)",
        ),
        Check(
            "copy_softmax",
            "A.11",
            _copy_build,
            _copy_sample,
            _out("out"),
            (8, 32, 128, 512),
            1e-3,
            "one softmax head copies the best-rated match under A.10 (size: L)",
        ),
        Check(
            "copy_sparse",
            "A.12",
            lambda L, eps, s: att.copy_sparse(L, COPY_SPARSE_D, COPY_SPARSE_M, eps),
            _copy_sparse_sample,
            _out("out"),
            (16, 64, 128, 256),
            1e-3,
            "three sparse layers copy token p_i for every p_i ≤ i, B = 2^⌊log2 √L⌋ (size: L)",
        ),
    ]
}
