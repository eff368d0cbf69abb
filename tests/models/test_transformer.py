"""The decoder: config checks, one parameter structure for every kernel and form, decoding
equal to the full forward, causality by gradients, dropout, tracing once."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxdp.models import ConfigError, ModelConfig, Transformer, sparse_mask

F32 = dict(rtol=1e-5, atol=2e-5)
KERNELS = [  # every (attention, form) the config can choose
    dict(attention="standard"),
    dict(attention="sparse", sparse_form="blocked"),
    dict(attention="sparse", sparse_form="masked"),
    dict(attention="linear", linear_form="chunked"),
    dict(attention="linear", linear_form="quadratic"),
    dict(attention="linear", linear_form="scan"),
]
IDS = ["-".join(k.values()) for k in KERNELS]


def config(**changes) -> ModelConfig:
    base = dict(dim=32, num_heads=4, max_len=48, vocab_size=13, block_size=4, chunk_size=8)
    return ModelConfig(**{**base, **changes})


def build(cfg: ModelConfig, seed: int = 0) -> Transformer:
    model = Transformer(cfg, rngs=nnx.Rngs(seed))
    model.eval()
    return model


def tokens(shape, vocab=13, seed=1):
    return jnp.asarray(np.random.default_rng(seed).integers(0, vocab, size=shape), jnp.int32)


def keys_seen(cfg: ModelConfig, L: int) -> np.ndarray:
    """bool[L, L]: the keys a query may see — I_i of eq. (6) for sparse, j <= i otherwise."""
    if cfg.attention == "sparse":
        return sparse_mask(L, cfg.block_size, cfg.local_blocks, cfg.global_tokens)
    return np.tril(np.ones((L, L), bool))


def jit_forward(model):
    graphdef, state = nnx.split(model)
    return lambda t: jax.jit(lambda s, t: nnx.merge(graphdef, s)(t))(state, t)


def decode_all(model, toks, prompt_len: int):
    """Logits at every position from a prefill of `prompt_len` tokens and then one step per token."""
    graphdef, params = nnx.split(model)
    prefill = jax.jit(lambda p, s, t: nnx.merge(graphdef, p).prefill(s, t))
    step = jax.jit(lambda p, s, t: nnx.merge(graphdef, p).decode_step(s, t))
    state = model.init_decode_state(toks.shape[0], model.config.max_len)
    logits = []
    if prompt_len:
        prompt_logits, state = prefill(params, state, toks[:, :prompt_len])
        logits.append(prompt_logits)
    for i in range(prompt_len, toks.shape[1]):
        step_logits, state = step(params, state, toks[:, i])
        logits.append(step_logits[:, None])
    assert int(state.position) == toks.shape[1]
    return jnp.concatenate(logits, axis=1)


# ------------------------------------------------------------------------------------ config


@pytest.mark.parametrize("field,value", [
    ("attention", "sprase"), ("linear_form", "fast"), ("sparse_form", "dense"), ("norm", "post_ln"),
    ("activation", "relu"), ("dtype", "int8"), ("param_dtype", "float8"), ("dim", 30),
    ("num_layers", 0), ("num_heads", -1), ("mlp_ratio", 1.5), ("max_len", 0), ("vocab_size", True),
    ("dropout", 1.0), ("dropout", -0.1), ("block_size", 49), ("block_size", 0), ("local_blocks", 0),
    ("global_tokens", 5), ("global_tokens", -1), ("chunk_size", 0),
])  # fmt: skip
def test_bad_values_are_refused_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=rf"^ModelConfig\.{field}:"):
        config(**{field: value})


def test_block_size_defaults_to_paper_rule_and_is_recorded():
    assert ModelConfig(max_len=505, vocab_size=20).block_size == 16  # 2^floor(log2 sqrt 505)
    assert ModelConfig(max_len=64, vocab_size=20).block_size == 8
    assert ModelConfig(max_len=63, vocab_size=20).block_size == 4
    cfg = ModelConfig(max_len=64, vocab_size=20)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.replace(max_len=505).block_size == 16


def test_unknown_field_in_dict_is_refused():
    with pytest.raises(ConfigError, match="'dims'"):
        ModelConfig.from_dict({"dims": 3, "max_len": 8, "vocab_size": 4})


def test_float64_without_x64_is_refused():
    with pytest.raises(ConfigError, match="ModelConfig.dtype"):
        Transformer(config(dtype="float64"), rngs=nnx.Rngs(0))


# --------------------------------------------------------------------------------- structure


def shapes(model):
    return jax.tree.map(lambda x: (x.shape, x.dtype), nnx.state(model, nnx.Param))


def test_every_kernel_and_form_has_the_same_parameters():
    reference = shapes(build(config()))
    for kernel in KERNELS:
        assert shapes(build(config(**kernel))) == reference, kernel


def test_parameter_paths_and_init():
    model = build(config(dim=64))
    q = model.blocks[0].attn.query.kernel[...]
    assert q.shape == (64, 64) and np.all(model.blocks[2].ffn.fc1.bias[...] == 0)
    assert model.head.kernel.shape == (64, 13) and model.head.bias.shape == (13,)
    limit = np.sqrt(6 / (64 + 64))  # Xavier-uniform bound
    assert np.abs(q).max() <= limit and np.abs(q).max() > 0.9 * limit
    assert model.blocks[1].ffn.fc1.kernel.shape == (64, 256)


def test_norm_none_has_no_layernorm():
    model = build(config(norm="none"))
    assert model.embed_norm is None and model.final_norm is None and model.blocks[0].attn_norm is None
    assert not any("scale" in str(path) for path, _ in nnx.to_flat_state(nnx.state(model, nnx.Param)))


# ---------------------------------------------------------------------------- equal outputs


@pytest.mark.parametrize("kernel", KERNELS, ids=IDS)
def test_prefill_then_decode_equals_full_forward(kernel):
    model = build(config(**kernel))
    toks = tokens((3, 41))
    full = jit_forward(model)(toks)
    np.testing.assert_allclose(decode_all(model, toks, prompt_len=9), full, **F32)


@pytest.mark.parametrize("kernel", [dict(attention="sparse", local_blocks=2, global_tokens=2),
                                    dict(attention="sparse", global_tokens=0),
                                    dict(attention="sparse", block_size=1)])  # fmt: skip
def test_sparse_decode_variants_equal_full_forward(kernel):
    model = build(config(**kernel))
    toks = tokens((2, 30))
    np.testing.assert_allclose(decode_all(model, toks, prompt_len=0), jit_forward(model)(toks), **F32)


def test_prefill_and_decode_float64(x64):
    for kernel in KERNELS[:4]:
        model = build(config(dtype="float64", param_dtype="float64", **kernel))
        toks = tokens((2, 23))
        full = jit_forward(model)(toks)
        assert full.dtype == jnp.float64
        np.testing.assert_allclose(decode_all(model, toks, prompt_len=5), full, rtol=1e-11, atol=1e-11)


def test_forms_give_the_same_model():
    toks = tokens((2, 45))
    for kind, forms in (("sparse", ("blocked", "masked")), ("linear", ("chunked", "quadratic", "scan"))):
        field = f"{kind}_form"
        outs = [jit_forward(build(config(attention=kind, **{field: f})))(toks) for f in forms]
        for out in outs[1:]:
            np.testing.assert_allclose(out, outs[0], **F32)


@pytest.mark.parametrize("form", ["blocked", "masked"])
def test_sparse_with_window_covering_everything_is_standard(form):
    toks = tokens((2, 40))
    standard = jit_forward(build(config()))(toks)
    sparse = jit_forward(build(config(attention="sparse", sparse_form=form, block_size=48)))(toks)
    np.testing.assert_allclose(sparse, standard, **F32)


# --------------------------------------------------------------------------------- causality


def _jacobian_norms(fn, L: int, D: int):
    """|d out[i] / d in[j]| summed over features, as an [L, L] matrix (one batch row)."""
    x = jnp.asarray(np.random.default_rng(3).normal(size=(1, L, D)), jnp.float32)
    jac = jax.jit(jax.jacrev(lambda x: fn(x)[0]))(x)  # [L, D_out, 1, L, D]
    return np.abs(np.asarray(jac)).sum(axis=(1, 2, 4))


@pytest.mark.parametrize("kernel", KERNELS, ids=IDS)
def test_model_is_causal(kernel):
    model = build(config(**kernel))
    L = 20
    jac = _jacobian_norms(lambda x: model.readout(model.run_blocks(x)), L, 32)
    assert np.all(jac[np.triu_indices(L, 1)] == 0), "output i depends on a later input"
    assert np.all(np.diag(jac) > 0)


@pytest.mark.parametrize("kernel", KERNELS, ids=IDS)
def test_one_attention_layer_sees_exactly_its_keys(kernel):
    """Zero gradient exactly outside I_i (eq. (6)) for sparse, outside j <= i otherwise."""
    cfg = config(**kernel)
    attn = build(cfg).blocks[0].attn
    L = 22
    jac = _jacobian_norms(attn, L, 32)
    allowed = keys_seen(cfg, L)
    assert np.all(jac[~allowed] == 0)
    assert np.all(jac[allowed] > 0)


@pytest.mark.parametrize("kernel", KERNELS, ids=IDS)
def test_attention_weights_are_what_the_kernel_mixes_with(kernel):
    """`weights` (for drawing) against the kernel itself: w @ v through the output map is the
    layer's output, rows sum to 1 and vanish outside the keys the layer may see."""
    cfg = config(**kernel)
    model = build(cfg)
    attn, L = model.blocks[0].attn, 22
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, L, 32)), jnp.float32)
    w = attn.weights(x)
    _, _, v = attn._heads(x)
    np.testing.assert_allclose(attn._merge(jnp.einsum("bhls,bshk->blhk", w, v)), attn(x), **F32)
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-5)
    allowed = keys_seen(cfg, L)
    assert np.all(np.asarray(w)[..., ~allowed] == 0) and np.all(np.asarray(w)[..., allowed] > 0)
    per_layer = model.attention_weights(tokens((2, L)))
    assert [m.shape for m in per_layer] == [(2, cfg.num_heads, L, L)] * cfg.num_layers


# ----------------------------------------------------------------------------------- dropout


def test_dropout_only_in_training_mode():
    model = Transformer(config(attention="sparse", dropout=0.5, num_layers=1), rngs=nnx.Rngs(0))
    forward = nnx.jit(lambda m, t: m(t))
    toks = tokens((2, 9))
    assert not np.allclose(forward(model, toks), forward(model, toks)), "dropout should redraw each call"
    model.eval()
    np.testing.assert_array_equal(forward(model, toks), forward(model, toks))
    model.train()
    assert not np.allclose(forward(model, toks), forward(model, toks))


def test_blocks_work_on_raw_residual_vectors():
    model = build(config(norm="none"))
    block = model.blocks[0]
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 7, 32)), jnp.float32)
    expected = x + block.attn(x)
    expected = expected + block.ffn(expected)
    np.testing.assert_allclose(block(x), expected, rtol=1e-6)


# ------------------------------------------------------------------------------ trace counts


@pytest.mark.parametrize("kernel", KERNELS, ids=IDS)
def test_train_step_forward_traces_once_per_shape(kernel):
    """The functional NNX pattern of a training step: parameters and the dropout RNG state go in
    and out of one jitted function, which must not retrace for new data of the same shape."""
    model = Transformer(config(num_layers=1, **kernel), rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(model)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(state, toks):
        model = nnx.merge(graphdef, state)
        loss = lambda m: -jnp.mean(jax.nn.log_softmax(m(toks))[..., 0])  # noqa: E731
        value, grads = nnx.value_and_grad(loss)(model)
        return value, grads, nnx.state(model)

    losses = []
    for seed in range(3):
        value, grads, state = step(state, tokens((4, 24), seed=seed))
        losses.append(float(value))
    chex.clear_trace_counter()
    assert all(np.isfinite(losses)) and len(set(losses)) == 3


def test_config_is_hashable_static_data():
    cfg = config()
    assert hash(cfg) == hash(dataclasses.replace(cfg))
