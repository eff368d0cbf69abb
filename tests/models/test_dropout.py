"""The counter-based dropout mask (`jaxdp.models.dropout`) against the closed forms of
Bernoulli(keep) masks: its rate, its independence across calls and elements, and the scaling."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxdp.models.dropout import Dropout, hash32, keep_mask


def test_hash_is_a_bijection_on_a_sample():
    x = jnp.asarray(np.random.default_rng(0).choice(2**32, size=200_000, replace=False).astype(np.uint32))
    assert len(np.unique(np.asarray(hash32(x)))) == len(x)


@pytest.mark.parametrize("keep", [0.9, 0.5, 0.1])
def test_rate_is_keep_within_five_sigma(keep):
    n = 1 << 20
    mask = np.asarray(keep_mask(jnp.uint32(7), (64, n // 64), keep))
    sigma = np.sqrt(keep * (1 - keep) / n)
    assert abs(mask.mean() - keep) < 5 * sigma, (mask.mean(), keep)


def test_masks_of_two_seeds_and_of_neighbours_are_independent():
    keep, shape = 0.5, (256, 1024)
    a = np.asarray(keep_mask(jnp.uint32(1), shape, keep), np.float64)
    b = np.asarray(keep_mask(jnp.uint32(2), shape, keep), np.float64)
    sigma = 1 / np.sqrt(a.size)  # std of a sample correlation of independent masks
    assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 5 * sigma
    assert abs(np.corrcoef(a[:, :-1].ravel(), a[:, 1:].ravel())[0, 1]) < 5 * sigma  # neighbouring elements


def test_dropout_scales_kept_values_and_redraws_each_call():
    layer = Dropout(0.25, rngs=nnx.Rngs(dropout=0))
    x = jnp.ones((128, 512))
    y1, y2 = np.asarray(layer(x)), np.asarray(layer(x))
    assert set(np.unique(y1)) == {0.0, np.float32(1 / 0.75)}
    assert not np.array_equal(y1, y2)
    assert abs((y1 > 0).mean() - 0.75) < 5 * np.sqrt(0.75 * 0.25 / x.size)
    np.testing.assert_array_equal(layer(x, deterministic=True), x)


def test_mask_does_not_depend_on_how_it_is_computed():
    """A function of (seed, index) alone: the rows of a batch get the same mask jitted or not."""
    seed = jnp.uint32(3)
    full = keep_mask(seed, (8, 100), 0.6)
    np.testing.assert_array_equal(jax.jit(keep_mask, static_argnums=(1, 2))(seed, (8, 100), 0.6), full)
