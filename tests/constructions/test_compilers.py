"""The compilers as stages (`constructions.compilers`) on a DP that is not a grid (`LineDP`), the
compilers for the newer mixers (window, gated, retention). Each compiled chain is compared with
the spec's textbook loop, token by token (the import rules are tests/test_structure.py's)."""

import dataclasses

import numpy as np
import pytest

from constructions.compile import ALL_COMPILERS, compile_dp, dims, generate_reference
from constructions.dp import DPSpec, edit_distance
from constructions.line import LineDP

pytestmark = [pytest.mark.usefixtures("x64"), pytest.mark.integration]


def _mismatches(spec, compiler, count, seed, model=None, **forms):
    """CoT positions whose teacher-forced next token differs from the reference (`model`:
    a compiled model to use instead of compiling `spec` with `compiler`)."""
    model = model or compile_dp(spec, compiler)
    inputs = spec.random_inputs(np.random.default_rng(seed), count)
    ref = generate_reference(spec, *inputs)
    P = spec.prompt_len
    return int((model.predict(ref, **forms)[:, P - 1 : -1] != ref[:, P:]).any(axis=-1).sum())


def test_line_dp_reference_is_the_recursion():
    spec = LineDP(7, K=3)
    (s,) = spec.random_inputs(np.random.default_rng(0), 30)
    for x in s:  # brute force: every subset whose chosen indices lie >= K apart
        best = 0
        for mask in range(1 << spec.n):
            idx = [i for i in range(spec.n) if mask >> i & 1]
            if all(b - a >= spec.K for a, b in zip(idx, idx[1:])):
                best = max(best, int(sum(x[i] for i in idx)))
        assert spec.answer(x) == best
    assert isinstance(spec, DPSpec) and isinstance(edit_distance(3), DPSpec)


@pytest.mark.parametrize("compiler", ALL_COMPILERS)
@pytest.mark.parametrize("n", [6, pytest.param(20, marks=pytest.mark.slow)])
def test_a_dp_that_is_not_a_grid_compiles_with_every_compiler(compiler, n):
    spec = LineDP(n, K=3)
    assert _mismatches(spec, compiler, 200, seed=n) == 0
    (s,) = spec.random_inputs(np.random.default_rng(n + 1), 20)
    np.testing.assert_array_equal(compile_dp(spec, compiler).generate(s, mode="decode"), generate_reference(spec, s))


@pytest.mark.parametrize("form", ["masked", "blocked"])
@pytest.mark.parametrize("n,count", [(4, 200), (8, 100)])
def test_window_reproduces_the_local_ed_chain(form, n, count):
    assert _mismatches(edit_distance(n, local=True), "window", count, seed=n, form=form) == 0


def test_window_decodes_the_local_chain_with_constant_D():
    spec = edit_distance(13, local=True)
    a, b = spec.random_inputs(np.random.default_rng(3), 50)
    np.testing.assert_array_equal(
        compile_dp(spec, "window").generate(a, b, mode="decode"), generate_reference(spec, a, b)
    )
    assert len({dims(edit_distance(n, local=True), "window") for n in range(3, 60, 7)}) == 1
    with pytest.raises(ValueError, match="m-local"):
        compile_dp(edit_distance(3), "window")


@pytest.mark.parametrize("compiler", ["gated", "retention"])
@pytest.mark.parametrize("form", ["quadratic", "chunked", "scan"])
def test_decay_compilers_reproduce_the_ed_chain(compiler, form):
    assert _mismatches(edit_distance(6), compiler, 100, seed=5, form=form) == 0


def test_the_decay_held_near_one_is_what_makes_retention_work():
    """RetNet's own decays (γ_h = 1 − 2^{−5−h}) break the AGG average the compiler relies on."""
    spec = edit_distance(6)
    model = compile_dp(spec, "retention")
    retnet = tuple(1 - 2.0 ** (-5 - h) for h in range(model.config.num_heads))
    handset = dataclasses.replace(model.handset, config=model.config.replace(options={"gammas": retnet}))
    assert _mismatches(spec, "retention", 100, seed=5, model=dataclasses.replace(model, handset=handset)) > 0
