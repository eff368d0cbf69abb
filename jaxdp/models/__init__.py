"""The paper's three architectures, and more mixers, as one flax.nnx decoder (docs/paper.md §1).

>>> from flax import nnx
>>> cfg = ModelConfig(mixer="linear", dim=32, max_len=64, vocab_size=12)
>>> model = Transformer(cfg, rngs=nnx.Rngs(0))
>>> model(jnp.zeros((2, 10), jnp.int32)).shape
(2, 10, 12)
"""

import jax.numpy as jnp  # noqa: F401  (used by the doctest)

from jaxdp.models import mixers
from jaxdp.models.config import ConfigError, ModelConfig, default_block_size
from jaxdp.models.masks import causal_mask, sparse_mask
from jaxdp.models.mixers.linear import LinearState
from jaxdp.models.mixers.sparse import SparseCache
from jaxdp.models.mixers.standard import KVCache
from jaxdp.models.transformer import FFN, Attention, Block, DecodeState, Transformer, sinusoids

__all__ = [
    "Attention",
    "Block",
    "ConfigError",
    "DecodeState",
    "FFN",
    "KVCache",
    "LinearState",
    "ModelConfig",
    "SparseCache",
    "Transformer",
    "causal_mask",
    "default_block_size",
    "mixers",
    "sinusoids",
    "sparse_mask",
]
