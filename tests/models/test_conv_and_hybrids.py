"""The two model options that hold for every mixer: the short causal convolution on q, k, v
(``short_conv``) and a per-layer plan of mixers (``layer_mixers``, a hybrid). Each against an
independent path: decoding against the full forward, the decode state's elements against
`state_numbers`, XLA's FLOPs, a convolution set to the identity against no convolution."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxdp import tasks
from jaxdp.models import ConfigError, ModelConfig, Transformer, flops, mixers
from jaxdp.models.config import hybrid_name, hybrid_plan, mixer_fields
from jaxdp.models.conv import ShortConv, conv_flops
from jaxdp.training.protocol import TrainConfig, run_identity
from tests.models.configs import make_config
from tests.models.test_flops import xla_flops
from tests.models.test_transformer import build, decode_all, jit_forward, tokens

pytestmark = pytest.mark.integration  # trains, runs commands or compiles whole models

F32 = dict(rtol=1e-5, atol=2e-5)
MODELS = [
    dict(mixer="standard", short_conv=3),
    dict(mixer="gated_deltanet", short_conv=4),
    dict(mixer="linear", layer_mixers=("linear", "linear", "standard")),
    dict(mixer="mamba2", layer_mixers=("mamba2", "sparse", "mamba2"), short_conv=2),
]
IDS = ["standard-conv3", "gated_deltanet-conv4", "linear+standard", "mamba2-sparse-mamba2-conv2"]


def config(**changes) -> ModelConfig:
    small = {"chunk_size": 8} if changes.get("mixer", "standard") in mixers.owners("chunk_size") else {}
    return make_config(**{**dict(dim=32, num_heads=4, max_len=48, vocab_size=13), **small, **changes})


#: the last case holds a convolution, a hybrid and both kinds of decode state at once: the first two,
#: one convolution each, run with -m slow
DECODE_CASES = [
    pytest.param(m, id=i, marks=[pytest.mark.slow] if "conv" in i and "sparse" not in i else [])
    for m, i in zip(MODELS, IDS)
]


@pytest.mark.parametrize("fields", DECODE_CASES)
def test_decoding_equals_the_full_forward(fields):
    model = build(config(**fields))
    toks = tokens((2, 30))
    full = jit_forward(model)(toks)
    slack = max(layer.mixer_impl.float32_slack for layer in model.config.layers())
    for prompt_len in (0, 7):
        np.testing.assert_allclose(decode_all(model, toks, prompt_len), full, **{k: v * slack for k, v in F32.items()})


@pytest.mark.parametrize("fields", MODELS, ids=IDS)
def test_state_numbers_count_the_decode_state(fields):
    model = build(config(**fields))
    for t in (1, 17, 48):
        layers = model.init_decode_state(1, t).layers
        assert sum(int(np.prod(x.shape)) for x in jax.tree.leaves(layers)) == model.config.state_numbers(t)


def test_a_convolution_set_to_the_identity_is_no_convolution():
    toks = tokens((2, 20))
    plain = build(config(mixer="linear"))
    conv = build(config(mixer="linear", short_conv=4))
    nnx.update(conv, nnx.state(plain, nnx.Param))  # the plain model's weights everywhere else
    assert not np.allclose(jit_forward(conv)(toks), jit_forward(plain)(toks), atol=1e-3)
    for block in conv.blocks:
        block.attn.conv.kernel[...] = jnp.zeros_like(block.attn.conv.kernel[...]).at[-1].set(1.0)  # y_t = x_t
    np.testing.assert_allclose(jit_forward(conv)(toks), jit_forward(plain)(toks), **F32)


def test_the_convolution_is_causal_and_reads_w_tokens():
    layer = ShortConv(5, 3, config(), nnx.Rngs(0))
    x = jnp.asarray(np.random.default_rng(0).normal(size=(1, 12, 5)), jnp.float32)
    jac = np.abs(np.asarray(jax.jacrev(lambda x: layer(x)[0])(x))).sum(axis=(1, 2, 4))  # [L, L]
    i, j = np.indices(jac.shape)
    assert np.all(jac[(j > i) | (j <= i - 3)] == 0) and np.all(jac[(j <= i) & (j > i - 3)] > 0)


def test_convolution_flops_match_xla():
    cfg = config(short_conv=4)
    layer = ShortConv(3 * cfg.dim, 4, cfg, nnx.Rngs(0))
    graphdef, state = nnx.split(layer)
    L = 100
    lowered = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x)).lower(state, jnp.zeros((1, L, 3 * cfg.dim)))
    cost = lowered.compile().cost_analysis()
    assert conv_flops(cfg, L) == pytest.approx((cost[0] if isinstance(cost, list) else cost)["flops"], rel=0.03)


@pytest.mark.parametrize("plan", [("linear", "linear", "standard"), ("gated", "window", "mamba2")])
def test_hybrid_flops_match_xla(plan):
    cfg = ModelConfig(mixer=plan[0], layer_mixers=plan, dim=64, max_len=512, vocab_size=20, options={"chunk_size": 32})
    assert flops.forward_flops(cfg, 128) == pytest.approx(xla_flops(cfg, 128), rel=0.03)


def test_a_hybrid_builds_each_layer_with_its_own_mixer():
    cfg = config(mixer="linear", layer_mixers=["linear", "gated", "standard"], chunk_size=16)  # 16: linear's own
    assert [c.mixer for c in cfg.layers()] == ["linear", "gated", "standard"]
    assert (
        cfg.layers()[0].options.chunk_size == 16 and cfg.layers()[1].options.chunk_size == 64
    )  # the others: their defaults
    model = build(cfg)
    assert [b.attn.config.mixer for b in model.blocks] == ["linear", "gated", "standard"]
    assert model.blocks[1].attn.mixer_params is not None and cfg.name == "linear,gated,standard"
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


def test_model_names_and_plans_round_trip():
    assert hybrid_plan("linear+standard", 3) == ("linear", "linear", "standard")
    assert hybrid_name(("linear", "linear", "standard")) == "linear+standard"
    assert hybrid_plan("a,b,c", 3) == ("a", "b", "c") and hybrid_plan("linear", 3) == ()
    assert mixer_fields("mamba2+standard", 2) == {"mixer": "mamba2", "layer_mixers": ("mamba2", "standard")}
    assert config(**mixer_fields("deltanet+standard", 3)).name == "deltanet+standard"
    assert config(short_conv=4).name == "standard conv4"
    with pytest.raises(ConfigError, match="'mamba3' is not a registered mixer"):
        mixer_fields("mamba3+standard", 3)


@pytest.mark.parametrize(
    "fields,message",
    [
        (dict(short_conv=-1), r"^ModelConfig\.short_conv: must be an integer in \[0, 64\]"),
        (dict(short_conv=True), r"^ModelConfig\.short_conv:"),
        (dict(layer_mixers=("standard", "linear")), r"^ModelConfig\.layer_mixers: 2 mixers for num_layers=3"),
        (dict(layer_mixers=("standard", "linear", "mamba3")), r"^ModelConfig\.layer_mixers: 'mamba3' is not allowed"),
        (dict(layer_mixers=("linear",) * 3), r"^ModelConfig\.layer_mixers: .* does not use mixer='standard'"),
        (dict(layer_mixers="linear"), r"^ModelConfig\.layer_mixers: must be a list"),
    ],
)
def test_bad_options_are_refused_naming_the_field(fields, message):
    with pytest.raises(ConfigError, match=message):
        config(**fields)


def test_the_options_join_a_run_identity_only_when_set():
    """Left out at their defaults, so runs named before them keep their digests."""
    task, tc = tasks.get("lis", 3), TrainConfig()
    plain = run_identity(task, config(max_len=task.max_len), tc, 100, 0)
    assert "short_conv" not in plain["model"] and "layer_mixers" not in plain["model"]
    conv = run_identity(task, config(max_len=task.max_len, short_conv=4), tc, 100, 0)
    hybrid = run_identity(
        task, config(max_len=task.max_len, mixer="linear", layer_mixers=("linear",) * 2 + ("standard",)), tc, 100, 0
    )
    assert conv["model"]["short_conv"] == 4 and hybrid["model"]["layer_mixers"] == ["linear", "linear", "standard"]


@pytest.mark.slow  # a smoke run; the convolution's numbers are held by the decoding and identity tests
def test_a_conv_model_trains(tmp_path):
    """Through `train`, with the parameters of the convolution among those that move."""
    from jaxdp.tasks.builder import build as build_data
    from jaxdp.training.run import restore_model, train

    task = tasks.get("lis", 3, value_range=8)
    train_set, test_set = build_data(task, 256, 16, seed=0, progress=False)
    cfg = ModelConfig(
        mixer="mamba2",
        dim=16,
        num_layers=1,
        max_len=task.max_len,
        vocab_size=len(task.vocab),
        short_conv=4,
        layer_mixers=("mamba2",),
    )
    before = Transformer(cfg, rngs=nnx.Rngs(0)).blocks[0].attn.conv.kernel[...]
    train(
        tmp_path / "run",
        task,
        cfg,
        TrainConfig(epochs=1, batch_size=32, lr=3e-3, warmup_epochs=0, seed=0),
        train_set,
        test_set,
        progress=False,
    )
    model, _ = restore_model(tmp_path / "run")
    assert model.config == cfg and not np.allclose(model.blocks[0].attn.conv.kernel[...], before)
