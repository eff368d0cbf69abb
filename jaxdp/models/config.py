"""`ModelConfig`: every choice that shapes a model, checked when the config is made (docs/paper.md §1).

`mixer` names one of `jaxdp.models.mixers`; its options live in ``options``, a dataclass of that
mixer (or a dict of its fields), which checks them and fills the defaults that depend on the
config (e.g. the sparse block size from max_len). An option of another mixer is refused, naming it.

>>> cfg = ModelConfig(mixer="sparse", dim=64, max_len=505, vocab_size=20)
>>> cfg.options.block_size, cfg.head_dim
(16, 16)
>>> ModelConfig(mixer="linear", dim=64, max_len=505, vocab_size=20, options={"block_size": 8})
Traceback (most recent call last):
...
jaxdp.runtime.errors.ConfigError: ModelConfig.options: block_size is an option of sparse, window, not of linear
>>> ModelConfig(mixer="sprase", dim=64, max_len=8, vocab_size=4)
Traceback (most recent call last):
...
jaxdp.runtime.errors.ConfigError: ModelConfig.mixer: 'sprase' is not allowed; choose one of standard, sparse, ...
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from jaxdp.models.masks import default_block_size  # the sparse block rule of §6.1, re-exported
from jaxdp.models.mixers import base as mixer_base
from jaxdp.models.mixers.base import ConfigError, MixerOptions
from jaxdp.runtime.validate import choice, integer

NORMS = ("pre_ln", "none")
ACTIVATIONS = ("gelu_tanh", "gelu")
DTYPES = ("float32", "float64", "bfloat16", "float16")
#: the key that names the mixer in a saved run's identity (protocol.json, config.json): kept so
#: that every saved run keeps its digest
SAVED_MIXER_KEY = "attention"
#: the names the mixer options had when they sat flat in ModelConfig (config.json of jaxdp 0.1)
LEGACY_OPTIONS = {"sparse_form": ("sparse", "form"), "linear_form": ("linear", "form")}
MAX_SHORT_CONV = 64
LEGACY_FLAT = ("block_size", "local_blocks", "global_tokens", "chunk_size", "sparse_form", "linear_form")

__all__ = [
    "ACTIVATIONS",
    "ConfigError",
    "DTYPES",
    "ModelConfig",
    "NORMS",
    "default_block_size",
    "check_mixer_name",
    "hybrid_plan",
    "mixer_fields",
]


def _dtype_name(value: Any) -> Any:
    """'float32' for "float32", numpy.float32, jnp.float32 or np.dtype('float32'); other values
    are returned as they are, for the field check to refuse."""
    if isinstance(value, str):
        return value
    try:
        import numpy as np

        return np.dtype(value).name
    except TypeError:
        return value


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """One decoder, one mixer of `jaxdp.models.mixers`. `options` is the mixer's options object
    (or a dict of them), resolved on construction so that a saved config records the numbers
    actually used (for instance the sparse block size). Forms (``options.form``) choose how the
    mixer is computed, never what it computes, and never change the parameters' structure.
    """

    mixer: str = "standard"
    num_layers: int = 3
    num_heads: int = 4
    dim: int = 128
    mlp_ratio: int = 4
    max_len: int
    vocab_size: int
    dropout: float = 0.1
    norm: str = "pre_ln"
    activation: str = "gelu_tanh"
    dtype: str = "float32"
    param_dtype: str = "float32"
    options: MixerOptions | dict[str, Any] | None = None
    short_conv: int = 0  # taps of a causal depthwise convolution on q, k, v (0: none; Mamba's recipe: 4)
    layer_mixers: tuple[str, ...] = ()  # a hybrid: one mixer per layer (empty: `mixer` in every layer)

    def __post_init__(self):
        self._check_fields()
        object.__setattr__(self, "options", self._options(self.options))

    def _check_fields(self) -> None:
        for name in ("dtype", "param_dtype"):  # a numpy or jax dtype is taken by its name
            object.__setattr__(self, name, _dtype_name(getattr(self, name)))
        choice(ConfigError, "ModelConfig.mixer", self.mixer, mixer_base.available())
        for name, allowed in (("norm", NORMS), ("activation", ACTIVATIONS), ("dtype", DTYPES), ("param_dtype", DTYPES)):
            choice(ConfigError, f"ModelConfig.{name}", getattr(self, name), allowed)
        for name in ("num_layers", "num_heads", "dim", "mlp_ratio", "max_len", "vocab_size"):
            integer(ConfigError, f"ModelConfig.{name}", getattr(self, name))
        if self.dim % self.num_heads:
            raise ConfigError(f"ModelConfig.dim: {self.dim} is not divisible by num_heads={self.num_heads}")
        if isinstance(self.dropout, bool) or not (isinstance(self.dropout, (int, float)) and 0.0 <= self.dropout < 1.0):
            raise ConfigError(f"ModelConfig.dropout: must lie in [0, 1), got {self.dropout!r}")
        integer(ConfigError, "ModelConfig.short_conv", self.short_conv, low=0, high=MAX_SHORT_CONV)
        self._check_layer_mixers()

    def _check_layer_mixers(self) -> None:
        plan = self.layer_mixers
        if isinstance(plan, str) or not isinstance(plan, (tuple, list)):
            raise ConfigError(f"ModelConfig.layer_mixers: must be a list of mixer names, one per layer, got {plan!r}")
        object.__setattr__(self, "layer_mixers", tuple(plan))
        if plan and len(plan) != self.num_layers:
            raise ConfigError(
                f"ModelConfig.layer_mixers: {len(plan)} mixers for num_layers={self.num_layers}; give one per layer"
            )
        for name in plan:
            choice(ConfigError, "ModelConfig.layer_mixers", name, mixer_base.available())
        if plan and self.mixer not in plan:
            raise ConfigError(
                f"ModelConfig.layer_mixers: {', '.join(plan)} does not use mixer={self.mixer!r}, "
                "whose options the config holds"
            )

    def _options(self, options: MixerOptions | dict[str, Any] | None) -> MixerOptions:
        """The mixer's options from an options object or dict, checked and resolved."""
        impl = self.mixer_impl
        if isinstance(options, MixerOptions):
            if not isinstance(options, impl.options):
                raise ConfigError(f"ModelConfig.options: {type(options).__name__} are not options of {self.mixer}")
            options = dataclasses.asdict(options)
        values = dict(options or {})
        known = {f.name for f in dataclasses.fields(impl.options)}
        for key in sorted(set(values) - known):
            owners = mixer_base.owners(key)
            if owners:
                raise ConfigError(
                    f"ModelConfig.options: {key} is an option of {', '.join(owners)}, not of {self.mixer}"
                )
            raise ConfigError(
                f"ModelConfig.options: unknown option {key!r}; {self.mixer}'s options: {', '.join(sorted(known))}"
            )
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        if not values.get("form"):
            values.pop("form", None)
        return impl.resolve(impl.options(**values), self)

    @classmethod
    def _field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @property
    def mixer_impl(self):
        """The `jaxdp.models.mixers.Mixer` that `mixer` names."""
        return mixer_base.get(self.mixer)

    @property
    def name(self) -> str:
        """The model's name in tables: the mixer, or a hybrid's plan (`hybrid_name`), and " conv<w>"
        with a short convolution of w taps."""
        name = hybrid_name(self.layer_mixers) if self.layer_mixers else self.mixer
        return f"{name} conv{self.short_conv}" if self.short_conv else name

    def layers(self) -> tuple[ModelConfig, ...]:
        """One config per layer: this one where the layer runs `mixer`, else the layer's mixer
        with its default options (a hybrid's other layers)."""
        return _layer_configs(self)

    def state_numbers(self, t: int) -> int:
        """Numbers the decode state holds after t tokens, all layers and heads: each layer's
        mixer state (`Mixer.state_size`) and the short convolution's last taps-1 inputs of q, k, v
        (what the pigeonhole bounds of Appendix B count)."""
        conv = 3 * self.dim * max(self.short_conv - 1, 0)
        return sum(c.num_heads * c.mixer_impl.state_size(c, t) + conv for c in self.layers())

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads

    @property
    def hidden_dim(self) -> int:
        """Width of the FFN's hidden layer."""
        return self.mlp_ratio * self.dim

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with `changes` applied (and checked); ``options=`` (a dict) is merged into the
        options. Options the mixer derives from `max_len` are derived again for a new `max_len`
        unless `changes` sets them, and a new mixer starts from its own defaults."""
        if changes.get("mixer", self.mixer) != self.mixer:
            return type(self)(**{**{k: getattr(self, k) for k in self._field_names() if k != "options"}, **changes})
        options = dataclasses.asdict(self.options)
        if "max_len" in changes:
            for name in getattr(self.mixer_impl, "derived", ()):
                options[name] = None
        options.update(changes.pop("options", None) or {})
        fields = {k: getattr(self, k) for k in self._field_names() if k != "options"}
        return type(self)(**{**fields, **changes, "options": options})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> ModelConfig:
        """The config of `to_dict`, or the model section of a saved run's config.json: there the
        mixer is named ``attention`` (`SAVED_MIXER_KEY`), and in jaxdp 0.1 the kernel options sat
        flat beside the fields (the options of its own mixer are kept, the others dropped)."""
        fields = dict(fields)
        if SAVED_MIXER_KEY in fields:
            fields.setdefault("mixer", fields.pop(SAVED_MIXER_KEY))
        known = set(cls._field_names())
        if any(key in fields for key in LEGACY_FLAT) and "options" not in fields:
            flat = {key: fields.pop(key) for key in LEGACY_FLAT if key in fields}
            mixer = fields.get("mixer", "standard")
            fields["options"] = {
                LEGACY_OPTIONS.get(k, (mixer, k))[1]: v
                for k, v in flat.items()
                if LEGACY_OPTIONS.get(k, (mixer, k))[0] == mixer and _owned(mixer, k)
            }
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ConfigError(f"ModelConfig: unknown field {unknown[0]!r}; fields: {', '.join(sorted(known))}")
        return cls(**fields)


@functools.lru_cache(maxsize=256)
def _layer_configs(config: ModelConfig) -> tuple[ModelConfig, ...]:
    if not config.layer_mixers:
        return (config,) * config.num_layers
    fields = {k: getattr(config, k) for k in config._field_names() if k not in ("options", "layer_mixers", "mixer")}
    own = config.replace(layer_mixers=())
    return tuple(own if name == config.mixer else ModelConfig(mixer=name, **fields) for name in config.layer_mixers)


def hybrid_plan(spec: str, num_layers: int) -> tuple[str, ...]:
    """The layer plan a model name gives: ``a+b`` is a stack of `a` whose last layer is `b` (Wen
    et al. 2024's one attention layer in a recurrent stack); ``a,b,c`` names every layer; a plain
    mixer name is no hybrid (``()``)."""
    if "," in spec:
        return tuple(spec.split(","))
    if "+" in spec:
        base, _, last = spec.partition("+")
        return (base,) * (num_layers - 1) + (last,)
    return ()


def mixer_fields(name: str, num_layers: int) -> dict[str, Any]:
    """``mixer`` and ``layer_mixers`` of a mixer name: a mixer, or a hybrid (`hybrid_plan`)
    whose first layer's mixer holds the options. Unknown names are refused naming the allowed."""
    from jaxdp.models import mixers

    plan = hybrid_plan(name, num_layers)
    for mixer in plan or (name,):
        if mixer not in mixers.available():
            raise ConfigError(
                f"mixer {name!r}: {mixer!r} is not a registered mixer; choose from "
                f"{', '.join(mixers.available())}, or a hybrid such as linear+standard"
            )
    return {"mixer": plan[0], "layer_mixers": plan} if plan else {"mixer": name}


def check_mixer_name(name: str) -> None:
    """Refuse a mixer name that is neither a registered mixer nor a hybrid of them (the number
    of layers does not matter to that)."""
    mixer_fields(name, num_layers=2)


def hybrid_name(plan: tuple[str, ...]) -> str:
    """The shortest name `hybrid_plan` reads back as `plan`."""
    base, last = plan[0], plan[-1]
    if len(plan) > 1 and base != last and plan[:-1] == (base,) * (len(plan) - 1):
        return f"{base}+{last}"
    return ",".join(plan)


def _owned(mixer: str, key: str) -> bool:
    from jaxdp.models import mixers

    return key in LEGACY_OPTIONS or mixer in mixers.owners(key)
