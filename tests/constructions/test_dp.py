"""The DP specs (eq. (9)–(10) in the regression setting): their reference against independent
solvers, their positions h_k, g_j against the token sequence, and their locality."""

import functools

import numpy as np
import pytest

from constructions.compile import compile_dp
from constructions.dp import GridDP, edit_distance, lcs
from jaxdp.tasks.edit_distance import EditDistance


def test_ed_reference_is_the_benchmark_table():
    spec, task = edit_distance(6, 8), EditDistance(6)
    a, b = spec.random_inputs(np.random.default_rng(0), 50)
    for x, y in zip(a, b):
        assert spec.table(x, y).tolist() == task.table(list(x), list(y))


def test_lcs_reference_is_the_recursion():
    spec = lcs(5, 7)
    a, b = spec.random_inputs(np.random.default_rng(1), 40)
    for x, y in zip(a, b):

        @functools.lru_cache(None)
        def best(i, j):  # LCS of the prefixes a[:i], b[:j]
            if i == 0 or j == 0:
                return 0
            return max(best(i - 1, j), best(i, j - 1), best(i - 1, j - 1) + (x[i - 1] == y[j - 1]))  # noqa: B023

        assert spec.answer(x, y) == best(5, 7)


@pytest.mark.parametrize("local", [False, True])
def test_targets_point_at_what_the_next_state_needs(local):
    """For every CoT token (i', j'), each fetch target holds dp(i'−1, j'), dp(i'−1, j'−1),
    a_i', b_j' (or, locally, the carried letter), and lies within the spec's m."""
    spec = edit_distance(4, 6, local=local)
    a, b = spec.random_inputs(np.random.default_rng(2), 1)
    tok, dp = spec.tokens(a[0], b[0]), spec.table(a[0], b[0])
    col = {f: 4 + t for t, f in enumerate(spec.fields)}
    var = lambda v, k, i, j: {"k": k, "i": i, "j": j}[v]  # noqa: E731
    reach = 0
    for i in range(1, spec.N + 1):
        for j in range(1, spec.M + 1):
            nxt = spec.position(i, j)  # 1-indexed; generated at position k = nxt − 1
            k = nxt - 1
            for f in spec.fetches:
                v, off = spec.target(f.name, first_row=i == 1)
                t = var(v, k, i, j) + off
                assert 1 <= t <= k
                held = tok[t - 1]
                if f.name == "up" and i > 1:
                    assert held[col["val"]] == dp[i - 1, j]
                if f.name == "diag" and i > 1 and j > 1:
                    assert held[col["val"]] == dp[i - 1, j - 1]
                if f.name == "a":
                    assert held[col["val"]] == a[0][i - 1]
                if f.name == "b" or (f.name == "up" and local):
                    assert held[col["bj" if local else "val"]] == b[0][j - 1]
                if f.name == "c" and (i == 1 or j < spec.M):
                    assert held[col["c"]] == (a[0][i + j - 2] if i + j - 1 <= spec.N else 0)
                reach = max(reach, nxt - t)
    assert reach <= spec.m
    assert (reach == spec.m) if local else (spec.m == spec.length - 1)


def test_tokens_layout():
    spec = edit_distance(3, 4, local=True)
    a, b = [1, 2, 3], [3, 3, 1, 2]
    tok = spec.tokens(a, b)
    assert tok.shape == (spec.length, spec.width) == (3 + 4 + 1 + 12 + 1, 9)
    assert tok[7, :4].tolist() == [1, 0, 1, 0]  # the separator: the state before (1, 1)
    assert tok[spec.position(2, 3) - 1, :4].tolist() == [2, 3, 4, 9]
    assert tok[-1].tolist() == [0, 0, 0, 0, spec.answer(a, b), 0, 0, 0, 1]
    row = tok[spec.position(2, 3) - 1]
    assert row[6:8].tolist() == [a[1], b[2]]  # ai, bj


def test_bad_specs_and_compilers_are_refused():
    with pytest.raises(ValueError, match="kind"):
        GridDP("lis", 3, 3)
    with pytest.raises(ValueError, match="N <= M"):
        edit_distance(5, 3)
    with pytest.raises(ValueError, match="compiler 'dense' is not one of"):
        compile_dp(edit_distance(3), "dense")
    with pytest.raises(ValueError, match="m-local"):
        compile_dp(edit_distance(3), "local")
