"""`HandSet`: hand-set parameters for a stack of jaxdp `Block`s, and running them.

A construction is a `ModelConfig` (norm "none", exact GeLU, no dropout), a residual `Layout`
and one complete parameter dict per block. Calling it builds real `jaxdp.models.Block`s in the
requested float format, writes the parameters by path (`residual.write_params`) and runs the
residual stream through them — the same modules the experiments train.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from constructions.mlp import LemmaMLP
from constructions.residual import Layout, attention_params, block_params, ffn_params, write_params
from jaxdp.models import Block, ModelConfig


def construction_config(layout: Layout, hidden: int, **fields) -> ModelConfig:
    """The config a construction runs under: norm "none", exact GeLU, no dropout, float64,
    FFN width the smallest multiple of D that holds `hidden` units."""
    D = layout.dim
    base = dict(
        mixer="standard",
        num_layers=1,
        num_heads=1,
        dim=D,
        max_len=1,
        vocab_size=1,
        mlp_ratio=max(1, -(-hidden // D)),
        dropout=0.0,
        norm="none",
        activation="gelu",
        dtype="float64",
        param_dtype="float64",
    )
    return ModelConfig(**{**base, **fields})


@dataclasses.dataclass(frozen=True)
class HandSet:
    """Hand-set blocks with what the construction promises.

    `error_bound`: the largest ℓ∞ error promised on the lemma's domain; `norm_bound`: the bound on
    the ℓ∞ norm of all parameters; `scale`: the scale parameter (`scale_name`) it was built with.
    """

    lemma: str
    config: ModelConfig
    layout: Layout
    blocks: tuple[dict, ...]
    scale: float
    scale_name: str
    error_bound: float
    norm_bound: float

    def norm(self) -> float:
        """The ℓ∞ norm of every parameter of every block."""
        return max(float(np.abs(v).max(initial=0.0)) for b in self.blocks for v in b.values())

    def modules(self, dtype: str = "float64", **forms) -> list[Block]:
        """Real `Block`s in `dtype` (parameters and activations) holding the hand-set weights;
        `forms` are mixer options that choose how it computes (`form`, `chunk_size`)."""
        cfg = self.config.replace(dtype=dtype, param_dtype=dtype, num_layers=len(self.blocks), options=forms)
        out = []
        for params in self.blocks:
            block = Block(cfg, rngs=nnx.Rngs(0))
            write_params(block, params)
            out.append(block)
        return out

    def __call__(self, x_BxLxD, dtype: str = "float64", **forms) -> np.ndarray:
        """The residual stream after the blocks, as float64 numpy."""
        with jax.default_matmul_precision("highest"):
            x = jnp.asarray(x_BxLxD, jnp.dtype(dtype))
            for block in self.modules(dtype, **forms):
                x = block(x, deterministic=True)
        return np.asarray(x.astype(jnp.float32 if dtype == "bfloat16" else x.dtype), np.float64)


def mlp_handset(lemma: LemmaMLP) -> HandSet:
    """One block whose FFN is the lemma's MLP (reading subspace `x`, writing `y`) and whose
    attention is inert: block(x ⊕ 0) = x ⊕ f(x)."""
    layout = Layout(x=lemma.mlp.d_in, y=lemma.mlp.d_out)
    cfg = construction_config(layout, lemma.mlp.hidden)
    ffn = ffn_params(layout, cfg.hidden_dim, [(lemma.mlp, "x", "y")])
    params = block_params(attention_params(layout, 1, {}), ffn)  # no head: the attention adds 0
    return HandSet(
        lemma.lemma, cfg, layout, (params,), lemma.scale, lemma.scale_name, lemma.error_bound, lemma.norm_bound
    )
