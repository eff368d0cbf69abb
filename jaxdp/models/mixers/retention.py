"""retention: linear attention with a fixed exponential decay per head (Sun et al. 2023, RetNet).

    o_i = Σ_{j<=i} γ_h^{i-j} (φ(q_i)·φ(k_j)) v_j / Σ_{j<=i} γ_h^{i-j} φ(q_i)·φ(k_j)

Decays: RetNet's schedule γ_h = 1 - 2^{-5-h} for heads h = 0 .. H-1 (memories of about 32, 64,
128, … tokens), or any `gammas` in (0, 1]. Normalisation: where RetNet applies a GroupNorm to the
unnormalised sum, we keep eq. (8)'s denominator with the same decay, so that every γ_h = 1 gives
back the paper's linear attention (`linear`) exactly, and the comparison with it isolates the
decay. Feature map φ = elu + 1, as `linear`. Forms and decode state: those of
`jaxdp.models.mixers.decay` (quadratic, chunked, scan; (S, z), K² + K numbers per head).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from jaxdp.models.mixers.base import ConfigError, register
from jaxdp.models.mixers.decay import DecayMixer
from jaxdp.models.mixers.linear import LinearOptions


def retnet_gammas(num_heads: int) -> tuple[float, ...]:
    """γ_h = 1 - 2^{-5-h} (Sun et al. 2023)."""
    return tuple(float(1 - 2.0 ** (-5 - h)) for h in range(num_heads))


@dataclasses.dataclass(frozen=True)
class RetentionOptions(LinearOptions):
    gammas: tuple[float, ...] | None = None  # None: RetNet's 1 - 2^(-5-h)


class Retention(DecayMixer):
    name = "retention"
    options = RetentionOptions
    decay_kind = "fixed"
    summary = "linear attention with a fixed decay γ_h per head (RetNet, Sun et al. 2023)"

    def resolve(self, options, config):
        options = super().resolve(options, config)
        gammas = retnet_gammas(config.num_heads) if options.gammas is None else tuple(float(g) for g in options.gammas)
        if len(gammas) != config.num_heads or not all(0.0 < g <= 1.0 for g in gammas):
            raise ConfigError(
                f"ModelConfig.options.gammas: need {config.num_heads} decays in (0, 1] (one per head), "
                f"got {options.gammas!r}"
            )
        return dataclasses.replace(options, gammas=gammas)

    def log_gates(self, aux, config, shape):
        dtype = jnp.promote_types(jnp.dtype(config.dtype), jnp.float32)
        return jnp.broadcast_to(jnp.asarray(np.log(np.asarray(config.options.gammas, np.float64)), dtype), shape)


register(Retention())
