"""`ModelConfig`: every choice that shapes a model, checked when the config is made (SPEC §1).

>>> cfg = ModelConfig(attention="sparse", dim=64, max_len=505, vocab_size=20)
>>> cfg.block_size, cfg.head_dim
(16, 16)
>>> ModelConfig(attention="sprase", dim=64, max_len=8, vocab_size=4)
Traceback (most recent call last):
...
jaxdp.models.config.ConfigError: ModelConfig.attention: 'sprase' is not allowed; choose one of standard, sparse, linear
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from jaxdp.errors import JaxdpError
from jaxdp.validate import choice, integer

ATTENTIONS = ("standard", "sparse", "linear")
LINEAR_FORMS = ("chunked", "quadratic", "scan")
SPARSE_FORMS = ("blocked", "masked")
NORMS = ("pre_ln", "none")
ACTIVATIONS = ("gelu_tanh", "gelu")
DTYPES = ("float32", "float64", "bfloat16", "float16")


class ConfigError(JaxdpError, ValueError):
    """A config field holds a value the model cannot use; the message names the field."""


def default_block_size(max_len: int) -> int:
    """B = 2^floor(log2 sqrt(L)) (SPEC §1), with L = `max_len`."""
    return 2 ** int(math.floor(math.log2(math.sqrt(max_len))))


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
    """One decoder, three attention kernels. Forms (`linear_form`, `sparse_form`) choose how a
    kernel is computed, never what it computes, and never change the parameters' structure.

    `block_size` None means the paper's default for `max_len`; it is resolved on construction so
    that a saved config records the number actually used.
    """

    attention: str = "standard"
    num_layers: int = 3
    num_heads: int = 4
    dim: int = 128
    mlp_ratio: int = 4
    max_len: int
    vocab_size: int
    dropout: float = 0.1
    block_size: int | None = None
    local_blocks: int = 1
    global_tokens: int = 1
    linear_form: str = "chunked"
    chunk_size: int = 64
    sparse_form: str = "blocked"
    norm: str = "pre_ln"
    activation: str = "gelu_tanh"
    dtype: str = "float32"
    param_dtype: str = "float32"

    def __post_init__(self):
        for name in ("dtype", "param_dtype"):  # a numpy or jax dtype is taken by its name
            object.__setattr__(self, name, _dtype_name(getattr(self, name)))
        for name, allowed in (("attention", ATTENTIONS), ("linear_form", LINEAR_FORMS),
                              ("sparse_form", SPARSE_FORMS), ("norm", NORMS),
                              ("activation", ACTIVATIONS), ("dtype", DTYPES),
                              ("param_dtype", DTYPES)):  # fmt: skip
            choice(ConfigError, f"ModelConfig.{name}", getattr(self, name), allowed)
        for name in ("num_layers", "num_heads", "dim", "mlp_ratio", "max_len", "vocab_size",
                     "local_blocks", "chunk_size"):  # fmt: skip
            integer(ConfigError, f"ModelConfig.{name}", getattr(self, name))
        if self.dim % self.num_heads:
            raise ConfigError(f"ModelConfig.dim: {self.dim} is not divisible by "
                              f"num_heads={self.num_heads}")  # fmt: skip
        if isinstance(self.dropout, bool) or not (isinstance(self.dropout, (int, float)) and 0.0 <= self.dropout < 1.0):
            raise ConfigError(f"ModelConfig.dropout: must lie in [0, 1), got {self.dropout!r}")
        if self.block_size is None:
            object.__setattr__(self, "block_size", default_block_size(self.max_len))
        block = self.block_size
        if isinstance(block, bool) or not isinstance(block, int) or not 1 <= block <= self.max_len:
            raise ConfigError(f"ModelConfig.block_size: must be an integer in [1, max_len="
                              f"{self.max_len}], got {block!r}")  # fmt: skip
        c = self.global_tokens
        if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c <= block:
            raise ConfigError(f"ModelConfig.global_tokens: must be an integer in [0, block_size="
                              f"{block}], got {c!r}")  # fmt: skip

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads

    @property
    def hidden_dim(self) -> int:
        """Width of the FFN's hidden layer."""
        return self.mlp_ratio * self.dim

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with `changes` applied (and checked). The block size is re-derived from a new
        `max_len` unless it was set explicitly in `changes`."""
        if "max_len" in changes and "block_size" not in changes:
            changes["block_size"] = None
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ConfigError(f"ModelConfig: unknown field {unknown[0]!r}; fields: {', '.join(sorted(known))}")
        return cls(**fields)
