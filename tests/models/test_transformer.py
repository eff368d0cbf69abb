"""The decoder, for every registered mixer and every one of its forms (the list comes from the
registry): config checks, one parameter structure per mixer whatever the form, decoding equal to
the full forward, causality by gradients, attention maps, dropout, tracing once."""

import dataclasses
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxdp.models import ConfigError, ModelConfig, Transformer, mixers
from tests.models.configs import make_config

F32 = dict(rtol=1e-5, atol=2e-5)
#: every (mixer, form) a config can choose, from the registry
KERNELS = [dict(mixer=name, form=form) for name in mixers.available() for form in mixers.get(name).forms]
IDS = ["-".join(k.values()) for k in KERNELS]
#: KERNELS with all but each mixer's reference form (its first) in `-m slow`, for checks the form does not change
#: (decoding, the weights, causality, which keys a layer sees): every form equals the reference on random inputs
#: (tests/models/test_mixers.py, test_forms_give_the_same_model), so what holds of the reference holds of it
OTHER_FORMS_SLOW = [
    pytest.param(k, id=i, marks=[] if k["form"] == mixers.get(k["mixer"]).forms[0] else [pytest.mark.slow])
    for k, i in zip(KERNELS, IDS)
]
#: options that keep the test models small, each given to the mixers that have it
SMALL = {"block_size": 4, "chunk_size": 8, "window": 6}


def config(**changes) -> ModelConfig:
    mixer = changes.get("mixer", "standard")
    small = {k: v for k, v in SMALL.items() if mixer in mixers.owners(k) and k not in changes}
    return make_config(**{**dict(dim=32, num_heads=4, max_len=48, vocab_size=13), **small, **changes})


def build(cfg: ModelConfig, seed: int = 0) -> Transformer:
    model = Transformer(cfg, rngs=nnx.Rngs(seed))
    model.eval()
    return model


def tokens(shape, vocab=13, seed=1):
    return jnp.asarray(np.random.default_rng(seed).integers(0, vocab, size=shape), jnp.int32)


def keys_seen(cfg: ModelConfig, L: int) -> np.ndarray:
    """bool[L, L]: the keys a query may see, as the mixer declares them (I_i of eq. (6) for
    sparse, the band for window, j <= i otherwise)."""
    return cfg.mixer_impl.support(cfg, L)


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


@pytest.mark.parametrize(
    "field,value",
    [
        ("mixer", "sprase"),
        ("norm", "post_ln"),
        ("activation", "relu"),
        ("dtype", "int8"),
        ("param_dtype", "float8"),
        ("dim", 30),
        ("num_layers", 0),
        ("num_heads", -1),
        ("mlp_ratio", 1.5),
        ("max_len", 0),
        ("vocab_size", True),
        ("dropout", 1.0),
        ("dropout", -0.1),
    ],
)
def test_bad_values_are_refused_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=rf"^ModelConfig\.{field}:"):
        config(**{field: value})


@pytest.mark.parametrize(
    "mixer,option,value",
    [
        ("linear", "form", "fast"),
        ("sparse", "form", "dense"),
        ("sparse", "block_size", 49),
        ("sparse", "block_size", 0),
        ("sparse", "local_blocks", 0),
        ("sparse", "global_tokens", 5),
        ("sparse", "global_tokens", -1),
        ("linear", "chunk_size", 0),
        ("window", "window", 0),
        ("retention", "gammas", (0.9, 1.5, 0.9, 0.9)),
        ("gated", "chunk_size", -3),
    ],
)
def test_bad_options_are_refused_naming_the_option(mixer, option, value):
    with pytest.raises(ConfigError, match=rf"^ModelConfig\.options\.{option}:"):
        config(mixer=mixer, **{option: value})


def test_an_option_of_another_mixer_is_refused_naming_it():
    with pytest.raises(ConfigError, match="block_size is an option of sparse, window, not of linear"):
        config(mixer="linear", block_size=4)
    with pytest.raises(
        ConfigError, match=r"^ModelConfig\.options: chunk_size is an option of linear, .*not of standard"
    ):
        ModelConfig(max_len=8, vocab_size=4, options={"chunk_size": 8})


def test_block_size_defaults_to_paper_rule_and_is_recorded():
    assert ModelConfig(mixer="sparse", max_len=505, vocab_size=20).options.block_size == 16  # 2^⌊log2 √505⌋
    assert ModelConfig(mixer="sparse", max_len=64, vocab_size=20).options.block_size == 8
    assert ModelConfig(mixer="sparse", max_len=63, vocab_size=20).options.block_size == 4
    cfg = ModelConfig(mixer="sparse", max_len=64, vocab_size=20)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.replace(max_len=505).options.block_size == 16
    assert cfg.replace(max_len=505, options={"block_size": 4}).options.block_size == 4


def test_a_config_json_of_jaxdp_0_1_is_converted():
    """Kernel options sat flat beside the fields: those of the config's own mixer are kept."""
    old = dict(
        attention="sparse",
        num_layers=3,
        num_heads=4,
        dim=64,
        mlp_ratio=4,
        max_len=84,
        vocab_size=20,
        dropout=0.1,
        block_size=8,
        local_blocks=2,
        global_tokens=1,
        linear_form="chunked",
        chunk_size=64,
        sparse_form="masked",
        norm="pre_ln",
        activation="gelu_tanh",
        dtype="float32",
        param_dtype="float32",
    )
    cfg = ModelConfig.from_dict(old)
    assert cfg.options == mixers.get("sparse").options(form="masked", block_size=8, local_blocks=2, global_tokens=1)
    linear = ModelConfig.from_dict({**old, "attention": "linear"})
    assert linear.options.form == "chunked" and linear.options.chunk_size == 64


def test_a_saved_run_names_its_mixer_attention_and_loads():
    """A run's identity (protocol.json, config.json) keeps the key its digest was made with."""
    cfg = config(mixer="window", window=5)
    saved = {("attention" if k == "mixer" else k): v for k, v in cfg.to_dict().items()}
    assert ModelConfig.from_dict(saved) == cfg
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


def test_unknown_field_in_dict_is_refused():
    with pytest.raises(ConfigError, match="'dims'"):
        ModelConfig.from_dict({"dims": 3, "max_len": 8, "vocab_size": 4})


def test_float64_without_x64_is_refused():
    with pytest.raises(ConfigError, match="ModelConfig.dtype"):
        Transformer(config(dtype="float64"), rngs=nnx.Rngs(0))


# --------------------------------------------------------------------------------- structure


def shapes(model):
    return jax.tree.map(lambda x: (x.shape, x.dtype), nnx.state(model, nnx.Param))


def test_every_form_of_a_mixer_has_the_same_parameters():
    """Forms never change the parameters; a mixer adds only parameters of its own (mixer_params)."""
    reference = shapes(build(config()))
    for kernel in KERNELS:
        got = shapes(build(config(**kernel)))
        assert got == shapes(build(config(mixer=kernel["mixer"]))), kernel
        for block in got["blocks"].values():
            block["attn"].pop("mixer_params", None)
        assert got == reference, kernel


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


@pytest.mark.integration
@pytest.mark.parametrize("kernel", OTHER_FORMS_SLOW)
def test_prefill_then_decode_equals_full_forward(kernel):
    model = build(config(**kernel))
    toks = tokens((3, 41))
    full = jit_forward(model)(toks)
    slack = model.config.mixer_impl.float32_slack
    np.testing.assert_allclose(decode_all(model, toks, prompt_len=9), full, **{k: v * slack for k, v in F32.items()})


@pytest.mark.parametrize(
    "kernel",
    [
        dict(mixer="sparse", local_blocks=2, global_tokens=2),
        dict(mixer="sparse", global_tokens=0),
        dict(mixer="sparse", block_size=1),
        dict(mixer="window", window=1),
        dict(mixer="window", window=13, block_size=8),
        dict(mixer="window", window=64),
    ],
)
@pytest.mark.integration
def test_sparse_decode_variants_equal_full_forward(kernel):
    model = build(config(**kernel))
    toks = tokens((2, 30))
    np.testing.assert_allclose(decode_all(model, toks, prompt_len=0), jit_forward(model)(toks), **F32)


@pytest.mark.integration
def test_grown_decode_state_equals_full_forward():
    """The standard KV cache grown between steps (as `decode.greedy` grows it by segments) gives
    the logits of a full forward at every position."""
    model = build(config(max_len=150))
    toks = tokens((2, 150))
    graphdef, params = nnx.split(model)
    step = jax.jit(lambda p, s, t: nnx.merge(graphdef, p).decode_step(s, t))
    state = model.init_decode_state(2, 20)
    logits, state = model.prefill(state, toks[:, :5])
    logits = [logits]
    for i in range(5, 150):
        if i in (20, 64, 128):
            state = model.grow_decode_state(state, {20: 64, 64: 128, 128: 150}[i])
        step_logits, state = step(params, state, toks[:, i])
        logits.append(step_logits[:, None])
    assert state.layers[0].k_BxHxTxK.shape[2] == 150
    np.testing.assert_allclose(jnp.concatenate(logits, axis=1), jit_forward(model)(toks), **F32)


def test_only_growable_states_grow():
    state = build(config(mixer="sparse")).init_decode_state(2, 20)
    assert build(config(mixer="sparse")).grow_decode_state(state, 40) is None
    model = build(config())
    with pytest.raises(ConfigError, match="max_len must be in"):
        model.grow_decode_state(model.init_decode_state(2, 20), 10)


@pytest.mark.slow  # kept out of the default run's 15 minutes; run with -m slow
@pytest.mark.integration
def test_prefill_and_decode_float64(x64):
    for kernel in [dict(mixer=name) for name in mixers.available()]:
        model = build(config(dtype="float64", param_dtype="float64", **kernel))
        toks = tokens((2, 23))
        full = jit_forward(model)(toks)
        assert full.dtype == jnp.float64
        np.testing.assert_allclose(decode_all(model, toks, prompt_len=5), full, rtol=1e-11, atol=1e-11)


@pytest.mark.integration
@pytest.mark.parametrize("name", mixers.available())
def test_forms_give_the_same_model(name):
    toks = tokens((2, 45))
    outs = [jit_forward(build(config(mixer=name, form=f)))(toks) for f in mixers.get(name).forms]
    for out in outs[1:]:
        np.testing.assert_allclose(out, outs[0], **F32)


@pytest.mark.parametrize("form", ["blocked", "masked"])
def test_sparse_with_window_covering_everything_is_standard(form):
    toks = tokens((2, 40))
    standard = jit_forward(build(config()))(toks)
    sparse = jit_forward(build(config(mixer="sparse", form=form, block_size=48)))(toks)
    np.testing.assert_allclose(sparse, standard, **F32)


# --------------------------------------------------------------------------------- causality


def _jacobian_norms(fn, L: int, D: int):
    """|d out[i] / d in[j]| summed over features, as an [L, L] matrix (one batch row)."""
    x = jnp.asarray(np.random.default_rng(3).normal(size=(1, L, D)), jnp.float32)
    jac = jax.jit(jax.jacrev(lambda x: fn(x)[0]))(x)  # [L, D_out, 1, L, D]
    return np.abs(np.asarray(jac)).sum(axis=(1, 2, 4))


@pytest.mark.integration
@pytest.mark.parametrize("kernel", OTHER_FORMS_SLOW)
def test_model_is_causal(kernel):
    model = build(config(**kernel))
    L = 20
    jac = _jacobian_norms(lambda x: model.readout(model.run_blocks(x)), L, 32)
    assert np.all(jac[np.triu_indices(L, 1)] == 0), "output i depends on a later input"
    assert np.all(np.diag(jac) > 0)


@pytest.mark.integration
@pytest.mark.parametrize("kernel", OTHER_FORMS_SLOW)
def test_one_attention_layer_sees_exactly_its_keys(kernel):
    """Zero gradient exactly outside I_i (eq. (6)) for sparse, outside j <= i otherwise."""
    cfg = config(**kernel)
    attn = build(cfg).blocks[0].attn
    L = 22
    jac = _jacobian_norms(attn, L, 32)
    allowed = keys_seen(cfg, L)
    assert np.all(jac[~allowed] == 0)
    assert np.all(jac[allowed] > 0)


@pytest.mark.parametrize("kernel", OTHER_FORMS_SLOW)
def test_attention_weights_are_what_the_kernel_mixes_with(kernel):
    """`weights` (for drawing) against the kernel itself: w @ v through the output map is the
    layer's output, rows sum to 1 and vanish outside the keys the layer may see."""
    cfg = config(**kernel)
    model = build(cfg)
    attn, L = model.blocks[0].attn, 22
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, L, 32)), jnp.float32)
    q, k, _ = attn._heads(x)
    if cfg.mixer_impl.weights(q, k, attn._aux(x), cfg) is None:  # no matrix mixes the values (e.g. the delta rule)
        with pytest.raises(ConfigError, match="has no attention matrix to draw"):
            attn.weights(x)
        return
    w = attn.weights(x)
    _, _, v = attn._heads(x)
    np.testing.assert_allclose(attn._merge(jnp.einsum("bhls,bshk->blhk", w, v)), attn(x), **F32)
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-5)
    allowed = keys_seen(cfg, L)
    assert np.all(np.asarray(w)[..., ~allowed] == 0) and np.all(np.asarray(w)[..., allowed] > 0)
    per_layer = model.attention_weights(tokens((2, L)))
    assert [m.shape for m in per_layer] == [(2, cfg.num_heads, L, L)] * cfg.num_layers


# ----------------------------------------------------------------------------------- dropout


@pytest.mark.parametrize("name", ["sparse", "window"])
def test_dropout_only_in_training_mode(name):
    model = Transformer(config(mixer=name, dropout=0.5, num_layers=1), rngs=nnx.Rngs(0))
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


@pytest.mark.integration
@pytest.mark.parametrize("kernel", OTHER_FORMS_SLOW)
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


def scatter_dtypes(model, toks) -> list[str]:
    """The element types of the scatters in the program of d(sum of logits)/d(parameters)."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    grad = jax.jit(jax.grad(lambda p: nnx.merge(graphdef, p, rest)(toks).sum()))
    hlo = grad.lower(params).compiler_ir("hlo").as_hlo_text()
    return re.findall(r"= (\w+)\[[\d,]*\](?:\{[\d,]*\})? scatter\(", hlo)


def test_a_bfloat16_model_embeds_as_nnx_and_scatters_its_gradient_in_float32():
    """The lookup gathers from the float32 table and casts after: the same embeddings as
    nnx.Embed's cast-then-gather, and the gradient's scatter-add in float32 (a bfloat16 one took
    more than half of an H200 training step)."""
    model, toks = build(config(dtype="bfloat16")), tokens((2, 9))
    looked_up = model.lookup(toks)
    assert looked_up.dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(looked_up, np.float32), np.asarray(model.embed(toks), np.float32))
    assert scatter_dtypes(model, toks) == ["f32"]
