"""The decoder of docs/paper.md §1 in flax.nnx: one model, any mixer of `jaxdp.models.mixers`.

    x = LN(Embed(s) + P) → dropout → M × [x += Attn(LN(x)); x += FFN(LN(x))] → LN → head

with fixed sinusoidal positions P (base 10000), FFN = Linear(D, rD) → GeLU → Linear(rD, D),
Xavier-uniform weights, zero biases, an untied head with bias, and dropout on the embedding, the
attention probabilities and both residual branches. `norm="none"` removes every LayerNorm, which
leaves the paper's eq. (1)-(2) (plus biases); the constructions use it.

The blocks work on raw residual-stream vectors (`Block(x_BxLxD)`), so hand-set weights can be
checked block by block. Parameter paths are stable and readable, e.g.
``blocks[0].attn.query.kernel`` (D x D, heads are consecutive groups of K = D/H columns),
``blocks[0].ffn.fc1.kernel``, ``head.bias``.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxdp.models.config import ConfigError, ModelConfig
from jaxdp.models.conv import ConvState, ShortConv
from jaxdp.models.dropout import Dropout

Array = jax.Array
xavier = nnx.initializers.xavier_uniform()


@functools.lru_cache(maxsize=16)
def sinusoids(length: int, dim: int) -> np.ndarray:
    """Fixed positions: P[p, 2i] = sin(p / 10000^(2i/D)), P[p, 2i+1] = cos(p / 10000^(2i/D))."""
    pos = np.arange(length)[:, None]
    freq = 1.0 / 10000.0 ** (np.arange(0, dim, 2) / dim)
    table = np.zeros((length, dim))
    table[:, 0::2] = np.sin(pos * freq)
    table[:, 1::2] = np.cos(pos * freq)[:, : dim // 2]
    table.flags.writeable = False
    return table


def _dtypes(config: ModelConfig) -> dict:
    return dict(dtype=jnp.dtype(config.dtype), param_dtype=jnp.dtype(config.param_dtype))


def _linear(d_in: int, d_out: int, config: ModelConfig, rngs: nnx.Rngs, *, at_least_f32: bool = False) -> nnx.Linear:
    """A dense map in the config's dtypes; `at_least_f32` computes in float32 or wider."""
    dtypes = _dtypes(config)
    if at_least_f32:
        dtypes["dtype"] = jnp.promote_types(dtypes["dtype"], jnp.float32)
    return nnx.Linear(d_in, d_out, kernel_init=xavier, bias_init=nnx.initializers.zeros, rngs=rngs, **dtypes)


def _norm(config: ModelConfig, rngs: nnx.Rngs) -> nnx.LayerNorm | None:
    if config.norm == "none":
        return None
    return nnx.LayerNorm(config.dim, epsilon=1e-5, rngs=rngs, **_dtypes(config))


def _apply(norm: nnx.LayerNorm | None, x: Array) -> Array:
    return x if norm is None else norm(x)


class Attention(nnx.Module):
    """Multi-head attention, eq. (3): per-head query/key/value maps, the config's mixer
    (`jaxdp.models.mixers`), an output map. A mixer with parameters of its own keeps them in
    ``mixer_params``."""

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        self.config = config
        D = config.dim
        self.query = _linear(D, D, config, rngs)
        self.key = _linear(D, D, config, rngs)
        self.value = _linear(D, D, config, rngs)
        self.out = _linear(D, D, config, rngs)
        self.probs_dropout = Dropout(config.dropout, rngs=rngs)
        self.mixer_params = config.mixer_impl.make_params(config, rngs)
        self.conv = ShortConv(3 * D, config.short_conv, config, rngs) if config.short_conv else None

    def _project(self, x_BxLxD: Array) -> Array:
        """[q | k | v] [..., 3D]: the three maps as one matmul with their kernels side by side (one
        larger matmul runs faster than three); the parameters stay three."""
        maps, dtype = (self.query, self.key, self.value), jnp.dtype(self.config.dtype)
        kernel = jnp.concatenate([m.kernel[...] for m in maps], axis=1).astype(dtype)
        bias = jnp.concatenate([m.bias[...] for m in maps]).astype(dtype)
        return jnp.dot(x_BxLxD.astype(dtype), kernel) + bias

    def _split(self, qkv: Array) -> tuple[Array, Array, Array]:
        H, K = self.config.num_heads, self.config.head_dim
        # a split, not three slices: its gradient is one concatenate, not three pads and their sum
        return tuple(y.reshape(*y.shape[:-1], H, K) for y in jnp.split(qkv, 3, axis=-1))

    def _heads(self, x_BxLxD: Array) -> tuple[Array, Array, Array]:
        """q, k, v [B, L, H, K], after the short convolution where the config has one."""
        qkv = self._project(x_BxLxD)
        return self._split(qkv if self.conv is None else self.conv(qkv))

    def _merge(self, o_BxLxHxK: Array) -> Array:
        return self.out(o_BxLxHxK.reshape(*o_BxLxHxK.shape[:-2], self.config.dim))

    def _aux(self, x_BxLxD: Array):
        return self.config.mixer_impl.aux(self.mixer_params, x_BxLxD, self.config)

    def probs_fn(self, deterministic: bool | None = None):
        """The dropout on attention probabilities, or None where it masks nothing (evaluation,
        rate 0): a mixer then needs no probabilities of its own and the standard one may take
        cuDNN's fused kernel on a GPU (`mixers.standard.cudnn_applies`)."""
        if not self.probs_dropout.active(deterministic):
            return None
        return functools.partial(self.probs_dropout, deterministic=deterministic)

    def mix(self, q, k, v, aux=None, deterministic: bool | None = None) -> Array:
        """The configured mixer on per-head q, k, v [B, L, H, K] (and its aux inputs)."""
        return self.config.mixer_impl.mix(q, k, v, aux, self.config, self.probs_fn(deterministic))

    def __call__(self, x_BxLxD: Array, deterministic: bool | None = None) -> Array:
        return self._merge(self.mix(*self._heads(x_BxLxD), self._aux(x_BxLxD), deterministic=deterministic))

    def weights(self, x_BxLxD: Array) -> Array:
        """w_BxHxLxL: how much query i takes from value j in each head (no dropout); the mixer
        computes ``w @ v`` (any form) without materialising it. For drawing attention maps."""
        q, k, _ = self._heads(x_BxLxD)
        w = self.config.mixer_impl.weights(q, k, self._aux(x_BxLxD), self.config)
        if w is None:
            raise ConfigError(f"the {self.config.mixer} mixer has no attention matrix to draw")
        return w

    # --- decoding: one state per layer (the mixer's)

    def init_state(self, batch: int, max_len: int):
        state = self.config.mixer_impl.init_state(batch, max_len, self.config)
        if self.conv is None:
            return state
        return ConvState(state, self.conv.init_recent(batch, 3 * self.config.dim, jnp.dtype(self.config.dtype)))

    def grow_state(self, state, max_len: int):
        mixer_state = state if self.conv is None else state.mixer
        grown = self.config.mixer_impl.grow_state(mixer_state, max_len, self.config)
        return grown if self.conv is None or grown is None else state._replace(mixer=grown)

    def prefill(self, x_BxPxD: Array, state) -> tuple[Array, object]:
        """Full forward over a prompt starting at position 0, filling a fresh `state`."""
        qkv = self._project(x_BxPxD)
        if self.conv is not None:
            state, recent = state.mixer, self.conv.prefill(state.recent_BxWxC, qkv)
            qkv = self.conv(qkv)
        q, k, v = self._split(qkv)
        aux = self._aux(x_BxPxD)
        out = self._merge(self.mix(q, k, v, aux, deterministic=True))
        state = self.config.mixer_impl.prefill(state, q, k, v, aux, self.config)
        return out, state if self.conv is None else ConvState(state, recent)

    def step(self, x_BxD: Array, state, pos) -> tuple[Array, object]:
        """Mix one new token at position `pos` (a traced int is fine)."""
        qkv = self._project(x_BxD)
        if self.conv is not None:
            qkv, recent = self.conv.step(state.recent_BxWxC, qkv)
            state = state.mixer
        q, k, v = self._split(qkv)
        aux = jax.tree.map(lambda a: a[:, 0], self._aux(x_BxD[:, None]))  # one token of each per-token input
        o, state = self.config.mixer_impl.step(state, q, k, v, aux, pos, self.config)
        return self._merge(o), state if self.conv is None else ConvState(state, recent)


class FFN(nnx.Module):
    """eq. (5) with biases: fc2(GeLU(fc1(x))); GeLU in tanh form or exact (erf) form."""

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        self.fc1 = _linear(config.dim, config.hidden_dim, config, rngs)
        self.fc2 = _linear(config.hidden_dim, config.dim, config, rngs)
        self.approximate = config.activation == "gelu_tanh"

    def __call__(self, x: Array) -> Array:
        return self.fc2(jax.nn.gelu(self.fc1(x), approximate=self.approximate))


class Block(nnx.Module):
    """eq. (1)-(2) in pre-LN form: x += Attn(LN(x)); x += FFN(LN(x))."""

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        self.attn_norm = _norm(config, rngs)
        self.attn = Attention(config, rngs=rngs)
        self.ffn_norm = _norm(config, rngs)
        self.ffn = FFN(config, rngs=rngs)
        self.dropout = Dropout(config.dropout, rngs=rngs)

    def _ffn(self, h: Array, deterministic: bool | None) -> Array:
        return h + self.dropout(self.ffn(_apply(self.ffn_norm, h)), deterministic=deterministic)

    def __call__(self, x_BxLxD: Array, deterministic: bool | None = None) -> Array:
        a = self.attn(_apply(self.attn_norm, x_BxLxD), deterministic=deterministic)
        return self._ffn(x_BxLxD + self.dropout(a, deterministic=deterministic), deterministic)

    def prefill(self, x_BxPxD: Array, state) -> tuple[Array, object]:
        a, state = self.attn.prefill(_apply(self.attn_norm, x_BxPxD), state)
        return self._ffn(x_BxPxD + a, True), state

    def step(self, x_BxD: Array, state, pos) -> tuple[Array, object]:
        a, state = self.attn.step(_apply(self.attn_norm, x_BxD), state, pos)
        return self._ffn(x_BxD + a, True), state


class DecodeState(NamedTuple):
    """Per-layer attention states and the position the next token will take."""

    layers: tuple
    position: Array  # int32 scalar
    positions_TxD: Array  # the sinusoid table for positions 0 .. max_len-1


class Transformer(nnx.Module):
    """`model(tokens_BxL) -> logits_BxLxV`; `model.eval()` turns dropout off.

    Decoding: ``state = model.init_decode_state(batch, max_len)``, optionally
    ``logits_BxPxV, state = model.prefill(state, prompt_BxP)``, then repeatedly
    ``logits_BxV, state = model.decode_step(state, tokens_B)``. Decoding never applies dropout.
    The caller keeps the total length within `max_len` (positions beyond it are not checked
    inside jit).
    """

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        if not isinstance(config, ModelConfig):
            raise ConfigError(f"Transformer: config must be a ModelConfig, got {type(config).__name__}")
        if not isinstance(rngs, nnx.Rngs):
            raise ConfigError(f"Transformer: rngs must be an nnx.Rngs (e.g. nnx.Rngs(0)), got {type(rngs).__name__}")
        if "float64" in (config.dtype, config.param_dtype) and not jax.config.jax_enable_x64:
            raise ConfigError(
                "ModelConfig.dtype: float64 needs jax_enable_x64 "
                "(jax.config.update('jax_enable_x64', True) before building)"
            )
        self.config = config
        self.embed = nnx.Embed(config.vocab_size, config.dim, embedding_init=xavier, rngs=rngs, **_dtypes(config))
        self.embed_norm = _norm(config, rngs)
        self.dropout = Dropout(config.dropout, rngs=rngs)
        self.blocks = nnx.List([Block(layer, rngs=rngs) for layer in config.layers()])  # a hybrid's own mixers
        self.final_norm = _norm(config, rngs)
        # logits in at least float32 (a bfloat16 model reads out in float32, as it takes its softmax)
        self.head = _linear(config.dim, config.vocab_size, config, rngs, at_least_f32=True)

    def check_tokens(self, tokens, ndim: int, where: str) -> None:
        """Refuse tokens of the wrong rank, longer than max_len, or (when they are concrete, i.e.
        outside jit) with ids outside [0, vocab_size): an embedding lookup would silently give
        garbage (NaN logits for ids past the table)."""
        cfg = self.config
        if getattr(tokens, "ndim", None) != ndim:
            raise ConfigError(f"{where}: tokens must be {ndim}-D, got shape {getattr(tokens, 'shape', None)}")
        if ndim == 2 and tokens.shape[1] > cfg.max_len:
            raise ConfigError(f"{where}: {tokens.shape[1]} tokens exceed ModelConfig.max_len={cfg.max_len}")
        if not isinstance(tokens, jax.core.Tracer) and tokens.size:
            values = np.asarray(tokens)  # concrete (also when a jitted function closes over it)
            low, high = int(values.min()), int(values.max())
            if low < 0 or high >= cfg.vocab_size:
                bad = low if low < 0 else high
                raise ConfigError(f"{where}: token id {bad} is outside the vocabulary [0, vocab_size={cfg.vocab_size})")

    def lookup(self, tokens) -> Array:
        """Token embeddings, gathered from the table in its parameter dtype and cast after (the
        same values as `nnx.Embed`, which casts the table first): the gradient's scatter-add then
        runs in float32. In bfloat16 the cast-first scatter-add cost more of a GPU training step
        than every matrix product together (benchmarks/RESULTS.md, "On a GPU")."""
        return jnp.take(self.embed.embedding[...], tokens, axis=0).astype(jnp.dtype(self.config.dtype))

    def embed_tokens(self, tokens, positions_LxD, deterministic: bool | None = None) -> Array:
        x = self.lookup(tokens) + positions_LxD.astype(jnp.dtype(self.config.dtype))
        return self.dropout(_apply(self.embed_norm, x), deterministic=deterministic)

    def readout(self, x: Array) -> Array:
        return self.head(_apply(self.final_norm, x))

    def attention_weights(self, tokens_BxL: Array) -> list[Array]:
        """Per layer, the attention matrix w_BxHxLxL of each head (`Attention.weights`), no dropout."""
        x = self.embed_tokens(tokens_BxL, sinusoids(tokens_BxL.shape[1], self.config.dim), True)
        out = []
        for block in self.blocks:
            out.append(block.attn.weights(_apply(block.attn_norm, x)))
            x = block(x, deterministic=True)
        return out

    def run_blocks(self, x_BxLxD: Array, deterministic: bool | None = None) -> Array:
        """The M blocks on a residual stream (no embedding, no read-out)."""
        for block in self.blocks:
            x_BxLxD = block(x_BxLxD, deterministic=deterministic)
        return x_BxLxD

    def __call__(self, tokens_BxL: Array, deterministic: bool | None = None) -> Array:
        self.check_tokens(tokens_BxL, 2, "Transformer(tokens_BxL)")
        L = tokens_BxL.shape[1]
        x = self.embed_tokens(tokens_BxL, sinusoids(L, self.config.dim), deterministic)
        return self.readout(self.run_blocks(x, deterministic))

    def init_decode_state(self, batch: int, max_len: int) -> DecodeState:
        if not 1 <= max_len <= self.config.max_len:
            raise ConfigError(
                f"init_decode_state: max_len must be in [1, ModelConfig.max_len={self.config.max_len}], got {max_len}"
            )
        layers = tuple(block.attn.init_state(batch, max_len) for block in self.blocks)
        table = jnp.asarray(sinusoids(max_len, self.config.dim), jnp.dtype(self.config.dtype))
        return DecodeState(layers, jnp.zeros((), jnp.int32), table)

    def grow_decode_state(self, state: DecodeState, max_len: int) -> DecodeState | None:
        """`state` with room for positions up to `max_len` (static, >= its length), or None when a
        layer's mixer cannot grow its state (`Mixer.grow_state`)."""
        if not state.positions_TxD.shape[0] <= max_len <= self.config.max_len:
            raise ConfigError(
                f"grow_decode_state: max_len must be in [{state.positions_TxD.shape[0]}, "
                f"ModelConfig.max_len={self.config.max_len}], got {max_len}"
            )
        layers = tuple(block.attn.grow_state(layer, max_len) for block, layer in zip(self.blocks, state.layers))
        if any(layer is None for layer in layers):
            return None
        table = jnp.asarray(sinusoids(max_len, self.config.dim), jnp.dtype(self.config.dtype))
        return DecodeState(layers, state.position, table)

    def prefill(self, state: DecodeState, tokens_BxP: Array) -> tuple[Array, DecodeState]:
        """Run a prompt (the same length P for every row) through a fresh state."""
        self.check_tokens(tokens_BxP, 2, "prefill(tokens_BxP)")
        P = tokens_BxP.shape[1]
        if P > state.positions_TxD.shape[0]:
            raise ConfigError(
                f"prefill: a prompt of {P} tokens does not fit the decode state's "
                f"{state.positions_TxD.shape[0]} positions"
            )
        x = self.embed_tokens(tokens_BxP, state.positions_TxD[:P], deterministic=True)
        layers = []
        for block, layer in zip(self.blocks, state.layers):
            x, layer = block.prefill(x, layer)
            layers.append(layer)
        return self.readout(x), DecodeState(tuple(layers), state.position + P, state.positions_TxD)

    def decode_step(self, state: DecodeState, tokens_B: Array) -> tuple[Array, DecodeState]:
        """Logits for the token after `tokens_B`, which take position `state.position`."""
        self.check_tokens(tokens_B, 1, "decode_step(tokens_B)")
        pos = state.position
        if not isinstance(pos, jax.core.Tracer) and int(pos) >= state.positions_TxD.shape[0]:
            raise ConfigError(
                f"decode_step: position {int(pos)} is past the decode state's "
                f"{state.positions_TxD.shape[0]} positions (init_decode_state's max_len)"
            )
        x = self.embed_tokens(tokens_B, state.positions_TxD[pos], deterministic=True)
        layers = []
        for block, layer in zip(self.blocks, state.layers):
            x, layer = block.step(x, layer, pos)
            layers.append(layer)
        return self.readout(x), DecodeState(tuple(layers), pos + 1, state.positions_TxD)
