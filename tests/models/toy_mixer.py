"""A mixer written outside the library, as a user would: the causal mean of the values,
o_i = (1/(i+1)) Σ_{j<=i} v_j. Registering it is all it takes for jaxdp to build, train, decode
and count it (tests/models/test_mixers.py)."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from jaxdp.models.mixers import Mixer, MixerOptions, register


@dataclasses.dataclass(frozen=True)
class MeanOptions(MixerOptions):
    form: str = "cumsum"


class Mean(Mixer):
    name = "toy_mean"
    options = MeanOptions
    forms = ("masked", "cumsum")
    summary = "the causal mean of the values (a test's own mixer)"

    def weights(self, q, k, aux, config):
        L = q.shape[1]
        w = np.tril(np.ones((L, L))) / np.arange(1, L + 1)[:, None]
        return jnp.broadcast_to(jnp.asarray(w, q.dtype), (q.shape[0], q.shape[2], L, L))

    def mix(self, q, k, v, aux, config, probs_fn=None):
        if config.options.form == "masked":
            return jnp.einsum("bhls,bshk->blhk", self.weights(q, k, aux, config), v)
        return jnp.cumsum(v, axis=1) / jnp.arange(1, v.shape[1] + 1, dtype=v.dtype)[None, :, None, None]

    def init_state(self, batch, max_len, config):
        return jnp.zeros((batch, config.num_heads, config.head_dim), jnp.dtype(config.dtype))

    def prefill(self, state, q, k, v, aux, config):
        return state + v.sum(axis=1)

    def step(self, state, q, k, v, aux, pos, config):
        state = state + v
        return state / (pos + 1).astype(v.dtype), state

    def flops(self, config, L):
        mix = 2.0 * L * L * config.dim if config.options.form == "masked" else 2.0 * L * config.dim
        return {"scores": 0.0, "mix": mix, "elementwise": 0.0}

    def step_flops(self, config, pos):
        return 2.0 * config.dim

    def state_size(self, config, t):
        return config.head_dim


def register_toy() -> Mean:
    return register(Mean())
