"""Every lemma of Appendix A, driven by one case table over random inputs in its domain and its
edges (constructions.checks samples them; the exact values are numpy closed forms or A.8's
loop): the error stays within ε in float64 for several ε, shrinks as the lemma says when its
scale parameter grows, and the parameters stay within the stated ℓ∞ bound."""

import dataclasses
import math
from collections.abc import Callable

import jax
import numpy as np
import pytest

from constructions import attention as att
from constructions import mlp
from constructions.checks import CHECKS
from constructions.handset import mlp_handset

pytestmark = pytest.mark.usefixtures("x64")


@dataclasses.dataclass(frozen=True)
class Case:
    size: int  # the problem size the test runs at
    exact: bool = False  # an identity: the error is rounding only, whatever ε
    # scales to sweep, from the scale that ε = 0.1 gives; None: sweep ε instead
    scales: Callable[[float], list[float]] | None = lambda s: [s, 2 * s, 4 * s]
    rate: float | None = None  # error(next scale) / error(scale), when the bound is tight
    norm_growth: float = 10.0  # norm_bound(ε/10) / norm_bound(ε) at most (10: O(1/ε); < 2: log)


CASES = {
    "product": Case(4, rate=0.25),  # error ≤ (2/3)M⁴/κ², attained at the corners
    "relu_to_gelu": Case(16),
    "linear": Case(100, exact=True, scales=None, norm_growth=1.0),
    "select": Case(10_000),
    "steps_up": Case(16),
    "steps_down": Case(16),
    "ceil_div": Case(8),
    "recurrence": Case(64, exact=True, scales=None, norm_growth=1.0),
    "agg": Case(4, scales=lambda s: [s, s + math.log(2), s + 2 * math.log(2)], rate=0.5, norm_growth=1.3),
    "copy_softmax": Case(32, scales=lambda s: [s / 200, s / 100, s / 50], norm_growth=1.3),
    "copy_sparse": Case(16, scales=None, norm_growth=1.5),
}
EPS = (1e-2, 1e-3, 1e-5)


def test_the_table_covers_every_check():
    assert set(CASES) == set(CHECKS)
    assert {c.lemma for c in CHECKS.values()} == {f"A.{i}" for i in range(1, 13) if i != 10}


@pytest.mark.integration
@pytest.mark.parametrize("eps", EPS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_error_within_eps_and_norms_within_bound(name, eps):
    case, check = CASES[name], CHECKS[name]
    m = check.measure(case.size, eps)
    tol = 1e-9 if case.exact else 0.0
    assert m.max_error <= (tol if case.exact else eps), m
    assert m.max_error <= m.error_bound * (1 + 1e-9) + 1e-12 + tol, m
    assert m.error_bound <= eps * (1 + 1e-12)
    assert m.norm <= m.norm_bound * (1 + 1e-12), m


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if not c.exact))
def test_error_shrinks_as_the_scale_grows(name):
    case, check = CASES[name], CHECKS[name]
    if case.scales is None:  # the scale is derived from ε inside: sweep ε
        ms = [check.measure(case.size, eps) for eps in (1e-1, 1e-2, 1e-3)]
    else:
        base = check.build(case.size, 0.1, None).scale
        ms = [check.measure(case.size, 0.1, scale=s) for s in case.scales(base)]
    errors = [m.max_error for m in ms]
    assert all(m.max_error <= m.error_bound * (1 + 1e-9) + 1e-12 for m in ms), ms
    assert errors[2] < errors[0] and errors[1] <= errors[0] * (1 + 1e-9), errors
    assert [m.error_bound for m in ms] == sorted((m.error_bound for m in ms), reverse=True)
    if case.rate is not None:
        np.testing.assert_allclose(np.array(errors[1:]) / errors[:-1], case.rate, rtol=0.2)


@pytest.mark.parametrize("name", sorted(CASES))
def test_norm_bound_grows_as_stated(name):
    case, check = CASES[name], CHECKS[name]
    coarse, fine = (check.build(case.size, eps, None) for eps in (1e-3, 1e-4))
    assert fine.norm_bound <= coarse.norm_bound * case.norm_growth * (1 + 1e-9)
    assert fine.norm_bound >= coarse.norm_bound


def test_closed_forms_of_the_scales():
    """The scale parameters as the lemmas state them, recomputed here from (M, ε)."""
    M, eps = 3.0, 1e-4
    assert mlp.product(M, eps).norm_bound == pytest.approx(math.sqrt(math.pi / 2) * M**4 / (6 * eps))
    hs = att.agg(2, 5, M, eps)  # head size K = max(d, m) = m: the paper's μ = ln(2Mm³/ε)
    assert hs.scale == pytest.approx(math.log(2 * M * 5**3 / eps))
    assert mlp.select(3, M, 0.5, eps).scale == pytest.approx(4 * mlp.C_GELU / eps)
    assert mlp.steps(7, eps).scale == pytest.approx(2 * mlp.C_GELU / eps)


def test_gelu_constant_is_the_largest_gap_between_gelu_and_relu():
    z = np.linspace(-6, 6, 2_000_001)
    gap = np.abs(np.asarray(jax.nn.gelu(z, approximate=False)) - np.maximum(z, 0))
    assert gap.max() == pytest.approx(mlp.C_GELU, rel=1e-9)
    t = np.linspace(0, 4, 400_001)
    assert np.max(t * 0.5 * np.vectorize(math.erfc)(t / math.sqrt(2))) == pytest.approx(mlp.C_GELU, rel=1e-9)


def test_a_margin_makes_the_gelu_error_a_gaussian_tail():
    """Integer inputs keep every pre-activation of A.7's net at 0 or ≥ 1/2 from its kink: a
    modest λ then gives a tiny error (the bound is s·γ·Φ(−λγ))."""
    n = 6
    lemma = mlp.relu_to_gelu(mlp.ceil_div_relu(n, n), 1e-12, margin=0.5)
    assert lemma.scale < 40 and lemma.error_bound <= 1e-12
    i = np.arange(1, n * n + 1, dtype=np.float64)
    hs = mlp_handset(lemma)
    y = hs.layout.read(hs(hs.layout.embed(x=i[None, :, None])), "y")[0]
    q = np.ceil(i / n)
    np.testing.assert_allclose(y, np.stack([q, q - 1, n - (q * n - i)], 1), atol=1e-11)


# ------------------------------------------------------------------------- outside the domain


def test_selection_is_undefined_inside_the_gap():
    """At t = 0 (|t| < α) the net returns x + y: the lemma's gap is needed."""
    lemma = mlp.select(2, 1.0, 0.1, 1e-4)
    hs = mlp_handset(lemma)
    x, y = np.array([0.5, -0.25]), np.array([0.75, 0.5])
    out = hs.layout.read(hs(hs.layout.embed(x=np.concatenate([x, y, [0.0]])[None, None])), "y")[0, 0]
    np.testing.assert_allclose(out, x + y, atol=1e-3)


def test_ceil_div_third_output_is_i_mod_n_at_integers_and_carries_the_offset_elsewhere():
    n = 5
    hs = mlp_handset(mlp.ceil_div(n, 1e-6))
    i = np.arange(1, n * n + 1, dtype=np.float64)
    for offset in (0.0, 0.2, -0.2):
        r = hs.layout.read(hs(hs.layout.embed(x=(i + offset)[None, :, None])), "y")[0, :, 2]
        np.testing.assert_allclose(r, n - (np.ceil(i / n) * n - i) + offset, atol=1e-6)


def test_copy_with_tied_ratings_averages_the_tied_tokens():
    """Assumption A.10's distinct ratings matter: two matches with the same rating are mixed."""
    Q, K = np.array([[1.0, 0.0, 0.0]]), np.array([[0.0, 1.0, 0.0]])  # q·k = x_q · x_k's label
    V = np.zeros((1, 3))
    V[0, 2] = 1.0
    rating = np.zeros(3)
    hs = att.copy_softmax(Q, K, V, rating, rho=0.0, delta=1.0, M=4.0, n=3, eps=1e-6)
    # tokens: labels (0, 0, −1) for the keys; query 3 asks with 1 so label-0 keys match (q·k = 0)
    x = np.array([[[0.0, 0.0, 2.0], [0.0, 0.0, -4.0], [1.0, -1.0, 3.0]]])
    out = hs.layout.read(hs(hs.layout.embed(x=x)), "out")[0, 2, 0]
    assert out == pytest.approx((2.0 - 4.0) / 2, abs=1e-6)
