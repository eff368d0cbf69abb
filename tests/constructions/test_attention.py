"""The attention lemmas through every form of the model's kernels: A.8 (the recurrence, also
as decoding), A.9 (AGG, linear attention in its quadratic, chunked and scan forms) and A.12
(COPY by three sparse layers, masked and blocked, for every target index)."""

import jax.numpy as jnp
import numpy as np
import pytest

from constructions import attention as att
from constructions.checks import CHECKS, COPY_SPARSE_D, copy_sparse_targets
from jaxdp.models import default_block_size

pytestmark = pytest.mark.usefixtures("x64")
LINEAR_FORMS = [dict(form="quadratic"), dict(form="chunked", chunk_size=8), dict(form="scan")]


@pytest.mark.integration
@pytest.mark.parametrize("form", LINEAR_FORMS, ids=lambda f: f["form"])
def test_a8_recurrence_equals_every_linear_form(form):
    hs = att.random_linear_attention(8, 2, seed=3)
    x = np.random.default_rng(0).normal(size=(2, 50, 8))
    np.testing.assert_allclose(hs(x, **form), att.linear_attention_reference(hs, x), rtol=0, atol=1e-12)


@pytest.mark.integration
def test_a8_recurrence_equals_decoding_token_by_token():
    hs = att.random_linear_attention(8, 2, seed=4)
    x = np.random.default_rng(1).normal(size=(2, 20, 8))
    (block,) = hs.modules()
    state = block.attn.init_state(2, 20)
    steps = []
    for t in range(20):
        y, state = block.step(jnp.asarray(x[:, t]), state, t)
        steps.append(np.asarray(y))
    np.testing.assert_allclose(np.stack(steps, 1), att.linear_attention_reference(hs, x), atol=1e-12)


@pytest.mark.integration
@pytest.mark.parametrize("form", LINEAR_FORMS, ids=lambda f: f["form"])
@pytest.mark.parametrize("m", [3, 5, 8])
def test_a9_averages_the_right_block_for_every_query(m, form):
    eps = 1e-4
    hs = att.agg(3, m, 1.0, eps)
    x, exact = CHECKS["agg"].sample(hs, m, np.random.default_rng(m))
    out = hs.layout.read(hs(x, **form), "out")
    assert np.abs(out - exact).max() <= eps
    # and it is the queried block, not another: the nearest block average is q_i's
    xhat, query = hs.layout.read(x, "xhat"), hs.layout.read(x, "query").argmax(-1) + 1
    for r in range(x.shape[0]):
        for i in range(m * m):
            means = [xhat[r, (b - 1) * m : min(b * m, i + 1)].mean(0) for b in range(1, i // m + 2)]
            assert 1 + np.argmin([np.abs(out[r, i] - u).max() for u in means]) == query[r, i]


@pytest.mark.integration
@pytest.mark.parametrize("form", ["masked", "blocked"])
@pytest.mark.parametrize("L", [16, 50, 100, 200])
def test_a12_copies_the_right_token_for_every_target(L, form):
    eps = 1e-3
    hs = att.copy_sparse(L, COPY_SPARSE_D, 1.0, eps)
    assert hs.config.options.block_size == default_block_size(L) == 2 ** int(np.floor(np.log2(np.sqrt(L))))
    x, exact = CHECKS["copy_sparse"].sample(hs, L, np.random.default_rng(L))
    out = hs.layout.read(hs(x, form=form), "out")
    assert np.abs(out - exact).max() <= min(eps, hs.error_bound)
    v, p = hs.layout.read(x, "v"), copy_sparse_targets(L)
    nearest = np.abs(out[:, :, None, :] - v[:, None, :, :]).max(-1)  # [row, i, j]
    nearest = np.where(np.tril(np.ones((L, L), bool))[None], nearest, np.inf).argmin(-1) + 1
    np.testing.assert_array_equal(nearest, p)
    # every (i, p ≤ i) pair was asked for
    assert {(i, t) for i in range(1, L + 1) for t in p[:, i - 1]} == {
        (i, t) for i in range(1, L + 1) for t in range(1, i + 1)
    }


def test_a12_refuses_a_block_size_below_two():
    with pytest.raises(ValueError, match="at least 2"):
        att.copy_sparse(16, 2, 1.0, 1e-3, B=1)


def test_a11_copy_needs_the_assumption():
    with pytest.raises(ValueError, match="Assumption A.10 fails"):
        att.copy_gap(rho=0.1, delta=0.5, rating_range=8.0)
