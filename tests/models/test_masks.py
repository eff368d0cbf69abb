"""eq. (6) against a set-based, 1-indexed transcription written here."""

import itertools

import numpy as np
import pytest

from jaxdp.models import causal_mask, default_block_size, sparse_mask
from tests.models.reference import eq6_set


@pytest.mark.parametrize(
    "L,B,k,c",
    [
        (L, B, k, c)
        for L, B, k in itertools.product((1, 2, 7, 16, 33), (1, 2, 3, 4, 8), (1, 2, 3))
        for c in sorted({0, 1, B // 2, B})
    ],
)
def test_sparse_mask_is_eq6(L, B, k, c):
    expected = np.zeros((L, L), bool)
    for i in range(1, L + 1):
        for j in eq6_set(i, B, k, c):
            expected[i - 1, j - 1] = True
    np.testing.assert_array_equal(sparse_mask(L, B, k, c), expected)


def test_sparse_mask_is_causal_and_keeps_self():
    m = sparse_mask(50, 4, 1, 1)
    assert not np.any(m & ~causal_mask(50))
    assert np.all(np.diag(m))


def test_window_covering_everything_is_causal():
    np.testing.assert_array_equal(sparse_mask(20, 32, 1, 1), causal_mask(20))


def test_sparse_keys_per_row_grow_like_sqrt_L():
    """With B = 2^floor(log2 sqrt L) a row keeps at most kB + c·L/B keys, O(sqrt L)."""
    for L in (64, 256, 1024):
        B = default_block_size(L)
        assert sparse_mask(L, B, 1, 1).sum(axis=1).max() <= B + L // B


@pytest.mark.parametrize("args", [(0, 2, 1, 1), (5, 0, 1, 1), (5, 2, 0, 1), (5, 2, 1, 3), (5, 2, 1, -1)])
def test_bad_arguments_refused(args):
    with pytest.raises(ValueError, match="sparse_mask"):
        sparse_mask(*args)
