"""Dropout with a cheap, counter-based mask.

`nnx.Dropout` draws its mask with `jax.random.bernoulli`, one threefry evaluation per element;
on a CPU that costs more than the attention it masks (benchmarks/RESULTS.md has the timing).
`Dropout` takes one 32-bit seed per
call from the same nnx RNG stream and derives the mask from an integer hash of each element's
index (`lowbias32`, two multiply-xorshift rounds, C. Wellons), kept where the hash is below
keep·2^32: the same Bernoulli(keep) per element up to 2^-32 in the rate, a new mask every call,
and a function of (seed, index) alone, so a data-parallel batch gets the masks of the whole
batch whatever its sharding. Everything else (rate, deterministic, train/eval) is nnx.Dropout's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


def hash32(x: jax.Array) -> jax.Array:
    """lowbias32: a bijective 32-bit integer hash with low bias (two multiply-xorshift rounds)."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def keep_mask(seed: jax.Array, shape: tuple[int, ...], keep: float) -> jax.Array:
    """bool[shape]: element i kept iff hash32(i + hash32(seed)) < keep·2^32."""
    index = jax.lax.broadcasted_iota(jnp.uint32, shape, 0)
    for axis in range(1, len(shape)):  # the flat index, in uint32 (wraps past 2^32 elements)
        index = index * jnp.uint32(shape[axis]) + jax.lax.broadcasted_iota(jnp.uint32, shape, axis)
    threshold = min(int(round(keep * 2.0**32)), 2**32 - 1)
    return hash32(index + hash32(seed.astype(jnp.uint32))) < jnp.uint32(threshold)


class Dropout(nnx.Dropout):
    """`nnx.Dropout` with the counter-based mask of the module docstring."""

    def active(self, deterministic: bool | None = None) -> bool:
        """Whether a call with this `deterministic` masks anything (rate > 0, in training)."""
        deterministic = self.deterministic if deterministic is None else deterministic
        return not (self.rate == 0.0 or deterministic)

    def __call__(self, inputs, *, deterministic: bool | None = None, rngs=None) -> jax.Array:
        if not self.active(deterministic):
            return inputs
        if self.rate == 1.0:
            return jnp.zeros_like(inputs)
        stream = self.rngs if rngs is None else rngs
        key = stream() if callable(stream) else stream
        seed = jax.random.bits(key, (), jnp.uint32)
        keep = 1.0 - self.rate
        mask = keep_mask(seed, inputs.shape, keep)
        return jax.lax.select(mask, inputs / jnp.asarray(keep, inputs.dtype), jnp.zeros_like(inputs))
