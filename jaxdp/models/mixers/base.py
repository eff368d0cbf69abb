"""The mixer protocol and the registry.

A *mixer* is the one part in which jaxdp's models differ: how a layer mixes the values of
earlier tokens. Everything else (embedding, blocks, FFN, head, decoding loop, training) is
shared. A mixer works on per-head queries, keys and values ``q_BxLxHxK`` and provides:

* ``forms``: the ways it can be computed, the reference first; every form computes the same
  thing from the same parameters, and `mix` computes the configured one;
* `weights`: the matrix ``w_BxHxLxL`` it mixes values with, where there is one (attention maps);
* a decode state: `init_state`, `prefill`, `step` (one token at a time, O(state) work);
* FLOPs: `flops` (forward, per layer and sequence, of the configured form) and `step_flops`
  (one decode step);
* `state_size`: how many numbers per layer and head its decode state carries after t tokens,
  the quantity the pigeonhole bounds of Appendix B count;
* optionally parameters of its own (`make_params`) and inputs computed from the layer's input
  (`aux`, e.g. a data-dependent gate).

Its options are a frozen dataclass (`options`), validated by `resolve`; `ModelConfig` holds one
and refuses an option of another mixer. `register` adds a mixer, `get` finds one by name (an
unknown name fails with the list), `available` lists them. The test suite derives its checks
from the registry, so a registered mixer is tested without a line written for it.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import jax

from jaxdp.runtime.errors import ConfigError
from jaxdp.runtime.registry import Registry

if TYPE_CHECKING:  # config.py imports this module
    from jaxdp.models.config import ModelConfig

Array = jax.Array
ProbsFn = Callable[[Array], Array] | None


@dataclasses.dataclass(frozen=True)
class MixerOptions:
    """A mixer's options; subclasses add fields, each with a default. `form` picks how the mix is
    computed, never what it computes (so a model trained with one form runs with another)."""

    form: str = ""


class Mixer(abc.ABC):
    """One way of mixing values (module docstring). Subclasses set the class attributes and
    implement the abstract methods."""

    name: ClassVar[str]
    options: ClassVar[type[MixerOptions]] = MixerOptions
    forms: ClassVar[tuple[str, ...]]  # the reference form first
    derived: ClassVar[tuple[str, ...]] = ()  # options `resolve` fills from max_len when None
    summary: ClassVar[str] = ""  # one line: formula and source
    #: how many times the suite's float32 tolerance its forms (and decoding) need to agree: a
    #: per-head output norm divides by an RMS that is small on early tokens, which magnifies the
    #: rounding of two different algorithms (float64 agreement is held to the usual bound)
    float32_slack: ClassVar[float] = 1.0

    # --- configuration ------------------------------------------------------------------
    def resolve(self, options: MixerOptions, config: ModelConfig) -> MixerOptions:
        """Check `options` for `config` and fill defaults that depend on it (e.g. a block size
        from max_len); raise ConfigError naming ``ModelConfig.options.<field>``."""
        if options.form not in self.forms:
            raise ConfigError(
                f"ModelConfig.options.form: {options.form!r} is not a form of {self.name}; "
                f"choose one of {', '.join(self.forms)}"
            )
        return options

    def make_params(self, config: ModelConfig, rngs) -> Any:
        """Parameters of the mixer's own (an nnx.Module), or None."""
        return None

    def aux(self, params, x_BxLxD: Array, config: ModelConfig) -> Array | None:
        """Per-token inputs the mixer computes from the layer's input (None if it needs none)."""
        return None

    # --- the mix ------------------------------------------------------------------------
    @abc.abstractmethod
    def mix(self, q: Array, k: Array, v: Array, aux, config: ModelConfig, probs_fn: ProbsFn = None) -> Array:
        """o_BxLxHxK in the configured form; `probs_fn` is applied to attention probabilities
        where the mixer has them (the model's attention dropout)."""

    def weights(self, q: Array, k: Array, aux, config: ModelConfig) -> Array | None:
        """w_BxHxLxL with o = w @ v, where the mixer has such a matrix (for drawing)."""
        return None

    def support(self, config: ModelConfig, L: int):
        """bool[L, L]: which keys query i reads (causal by default); the tests hold the layer's
        Jacobian to exactly this pattern."""
        import numpy as np

        return np.tril(np.ones((L, L), dtype=bool))

    # --- decoding -----------------------------------------------------------------------
    @abc.abstractmethod
    def init_state(self, batch: int, max_len: int, config: ModelConfig) -> Any: ...

    @abc.abstractmethod
    def prefill(self, state, q: Array, k: Array, v: Array, aux, config: ModelConfig) -> Any:
        """The state after a prompt starting at position 0 (whose output `mix` computes)."""

    @abc.abstractmethod
    def step(
        self, state, q_BxHxK: Array, k_BxHxK: Array, v_BxHxK: Array, aux, pos, config: ModelConfig
    ) -> tuple[Array, Any]:
        """Mix one new token at position `pos` (may be traced); returns (o_BxHxK, state)."""

    def grow_state(self, state, max_len: int, config: ModelConfig) -> Any | None:
        """The state made room for positions up to `max_len` (a larger, static length) with the
        same contents, or None where the mixer cannot (the default). A mixer whose per-step cost
        grows with its state's length implements it, and decoding then starts with a short state
        and grows it by segments, so a step reads only about as much as is filled."""
        return None

    # --- what it costs ------------------------------------------------------------------
    @abc.abstractmethod
    def flops(self, config: ModelConfig, L: int) -> dict[str, float]:
        """Forward FLOPs of one layer on one sequence of length L, configured form:
        {"scores", "mix", "elementwise"}."""

    @abc.abstractmethod
    def step_flops(self, config: ModelConfig, pos: int) -> float:
        """Mixing FLOPs of one layer's decode step at position `pos` (one sequence)."""

    def param_count(self, config: ModelConfig) -> int:
        """Parameters of one layer's `make_params`, in closed form (0 by default)."""
        return 0

    def kept_per_token(self, config: ModelConfig, L: int) -> float:
        """Numbers per token a training step keeps for its backward pass beyond the layer's
        inputs and q, k, v (`jaxdp.training.limits.training_bytes` adds them), e.g. per-chunk C x C
        matrices; 0 by default."""
        return 0.0

    @abc.abstractmethod
    def state_size(self, config: ModelConfig, t: int) -> int:
        """Numbers per layer and head the decode state holds after t tokens (= the elements of
        ``init_state(1, t, config)`` per head)."""


#: the registered mixers, by name (`register`)
REGISTRY: Registry[Mixer] = Registry("mixer")


def register(mixer: Mixer) -> Mixer:
    """Add `mixer` under its name (a test module may register its own)."""
    if not getattr(mixer, "name", None) or not mixer.forms:
        raise ConfigError(f"a mixer needs a name and at least one form, got {mixer!r}")
    return REGISTRY.add(mixer.name, mixer)


def available() -> tuple[str, ...]:
    """The registered mixers, in registration order."""
    return tuple(REGISTRY)


def get(name: str) -> Mixer:
    if name not in REGISTRY:
        raise ConfigError(
            f"ModelConfig.mixer: {name!r} is not allowed (not a registered mixer); choose one of {', '.join(REGISTRY)}"
        )
    return REGISTRY[name]


def owners(option: str) -> list[str]:
    """The mixers that have an option of this name."""
    return [name for name, m in REGISTRY.items() if option in {f.name for f in dataclasses.fields(m.options)}]
