"""Every registered mixer, from the registry: each form against the mixer's reference form, the
state size against the decode state it allocates, the mixers' limiting cases (a window covering
everything is standard attention; a decay of 1 is the paper's linear attention), and a mixer
registered from a test module trained and decoded through the public API."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxdp.models import ModelConfig, Transformer, mixers
from jaxdp.models.mixers import decay, linear
from tests.models.configs import make_config

ROOT = Path(__file__).resolve().parents[2]
TOL = {jnp.float32: dict(rtol=1e-5, atol=1e-6), jnp.float64: dict(rtol=1e-11, atol=1e-12)}
SMALL = {"block_size": 4, "chunk_size": 8, "window": 7}
FORMS = [(name, form) for name in mixers.available() for form in mixers.get(name).forms[1:]]


def small_config(name: str, dtype=jnp.float32, **changes) -> ModelConfig:
    options = {k: v for k, v in SMALL.items() if name in mixers.owners(k)}
    dtypes = dict(dtype=jnp.dtype(dtype).name, param_dtype=jnp.dtype(dtype).name)
    return make_config(mixer=name, dim=24, num_heads=3, max_len=64, vocab_size=11, **{**options, **dtypes, **changes})


def inputs(cfg: ModelConfig, L: int, seed: int = 0):
    """q, k, v and the aux inputs of a real attention layer of `cfg` on random inputs."""
    attn = Transformer(cfg, rngs=nnx.Rngs(seed)).blocks[0].attn
    x = jnp.asarray(np.random.default_rng(seed).normal(size=(2, L, cfg.dim)), jnp.dtype(cfg.dtype))
    return (*attn._heads(x), attn._aux(x))


def mix(cfg: ModelConfig, form: str, q, k, v, aux):
    cfg = cfg.replace(options={"form": form})
    return jax.jit(lambda q, k, v, aux: cfg.mixer_impl.mix(q, k, v, aux, cfg))(q, k, v, aux)


@pytest.mark.integration
@pytest.mark.parametrize("name,form", FORMS, ids=[f"{n}-{f}" for n, f in FORMS])
@pytest.mark.parametrize("L", [1, 13, 40])
def test_every_form_equals_the_reference(name, form, L):
    cfg = small_config(name)
    args = inputs(cfg, L, seed=L)
    tol = {key: value * cfg.mixer_impl.float32_slack for key, value in TOL[jnp.float32].items()}
    np.testing.assert_allclose(mix(cfg, form, *args), mix(cfg, cfg.mixer_impl.forms[0], *args), **tol)


@pytest.mark.integration
@pytest.mark.parametrize("name,form", FORMS, ids=[f"{n}-{f}" for n, f in FORMS])
def test_every_form_equals_the_reference_float64(x64, name, form):
    cfg = small_config(name, jnp.float64)
    args = inputs(cfg, 29)
    out = mix(cfg, form, *args)
    assert out.dtype == jnp.float64
    np.testing.assert_allclose(out, mix(cfg, cfg.mixer_impl.forms[0], *args), **TOL[jnp.float64])


@pytest.mark.parametrize("name", mixers.available())
def test_state_size_counts_the_decode_state(name):
    """`state_size(t)`: the numbers per layer and head of the decode state for t tokens."""
    cfg = small_config(name)
    for t in (1, 5, 16, 64):
        state = cfg.mixer_impl.init_state(1, t, cfg)
        elements = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state))
        assert elements == cfg.num_heads * cfg.mixer_impl.state_size(cfg, t), (name, t)


def test_state_sizes_are_the_documented_formulas():
    K, t = 8, 100
    sizes = {
        name: small_config(name).replace(dim=24, num_heads=3).mixer_impl.state_size(small_config(name), t)
        for name in mixers.available()
    }
    assert sizes["standard"] == 2 * K * t and sizes["linear"] == sizes["retention"] == sizes["gated"] == K * K + K
    assert sizes["window"] == 2 * K * 7  # a ring of w = 7
    assert sizes["sparse"] == 2 * K * (4 + -(-t // 4))  # kB = 4 local slots, one summary slot per block
    assert sizes["mamba2"] == sizes["deltanet"] == sizes["gated_deltanet"] == K * K  # S only: no normaliser z


# ------------------------------------------------------------------------- limiting cases


@pytest.mark.parametrize("form", ["masked", "blocked"])
def test_a_window_covering_everything_is_standard_attention(form):
    L = 30
    q, k, v, _ = inputs(small_config("standard"), L)
    standard = mix(small_config("standard"), "masked", q, k, v, None)
    for w in (L, L + 9):
        np.testing.assert_allclose(
            mix(small_config("window", window=w), form, q, k, v, None), standard, rtol=1e-5, atol=1e-6
        )


@pytest.mark.integration
@pytest.mark.parametrize("form", ["quadratic", "chunked", "scan"])
def test_retention_with_decay_one_is_linear_attention(form):
    q, k, v, _ = inputs(small_config("linear"), 37)
    expected = linear.linear_quadratic(q, k, v)
    cfg = small_config("retention", gammas=(1.0, 1.0, 1.0))
    np.testing.assert_allclose(mix(cfg, form, q, k, v, None), expected, rtol=1e-5, atol=1e-6)
    decayed = mix(small_config("retention"), form, q, k, v, None)
    assert not np.allclose(decayed, expected, rtol=1e-3), "RetNet's decays should change the output"


@pytest.mark.parametrize("form", ["quadratic", "chunked", "scan"])
def test_gated_with_gates_one_is_linear_attention(form):
    cfg = small_config("gated")
    q, k, v, aux = inputs(cfg, 37)
    expected = linear.linear_quadratic(q, k, v)
    np.testing.assert_allclose(mix(cfg, form, q, k, v, jnp.zeros_like(aux)), expected, rtol=1e-5, atol=1e-6)
    assert aux.shape == (2, 37, 3) and bool(jnp.all(aux < 0)), "log-gates of σ(·) < 1"


def test_gated_decay_matches_a_product_of_gates_loop():
    """The reference form against its definition: weight e^{c_i - c_j} = Π_{j<t<=i} a_t."""
    cfg = small_config("gated")
    q, k, v, aux = inputs(cfg, 9)
    a = np.exp(np.asarray(aux, np.float64))
    fq, fk = np.asarray(linear.feature_map(q), np.float64), np.asarray(linear.feature_map(k), np.float64)
    out = np.zeros(v.shape)
    for b in range(2):
        for h in range(3):
            for i in range(9):
                w = np.array([np.prod(a[b, j + 1 : i + 1, h]) * fq[b, i, h] @ fk[b, j, h] for j in range(i + 1)])
                out[b, i, h] = w @ np.asarray(v[b, : i + 1, h], np.float64) / w.sum()
    np.testing.assert_allclose(decay.decay_quadratic(q, k, v, aux), out, rtol=1e-5, atol=1e-6)


def _random(shape, seed, dtype=np.float64):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), dtype)


@pytest.mark.integration
def test_delta_rule_matches_its_definition_as_a_numpy_loop(x64):
    """S_t = α_t (I - β_t k_t k_tᵀ) S_{t-1} + β_t k_t v_tᵀ, o_t = S_tᵀ q_t, with explicit matrices."""
    from jaxdp.models.mixers import delta

    B, L, H, K = 2, 11, 3, 4
    q, k, v = (_random((B, L, H, K), s) for s in (1, 2, 3))
    k = k / jnp.linalg.norm(k, axis=-1, keepdims=True)
    beta, log_alpha = jax.nn.sigmoid(_random((B, L, H), 4)), -jnp.abs(_random((B, L, H), 5))
    out = np.zeros((B, L, H, K))
    for b in range(B):
        for h in range(H):
            S = np.zeros((K, K))
            for t in range(L):
                kt, bt = np.asarray(k[b, t, h]), float(beta[b, t, h])
                S = np.exp(float(log_alpha[b, t, h])) * (np.eye(K) - bt * np.outer(kt, kt)) @ S + bt * np.outer(
                    kt, v[b, t, h]
                )
                out[b, t, h] = S.T @ np.asarray(q[b, t, h])
    np.testing.assert_allclose(delta.delta_scan(q, k, v, beta, log_alpha), out, rtol=1e-12, atol=1e-12)
    for C in (1, 4, 16):  # chunks of one token, that do not divide L, and longer than L
        np.testing.assert_allclose(
            delta.delta_chunked(q, k, v, beta, log_alpha, chunk_size=C), out, rtol=1e-11, atol=1e-11
        )
    no_decay = delta.delta_chunked(q, k, v, beta, chunk_size=4)
    np.testing.assert_allclose(no_decay, delta.delta_scan(q, k, v, beta, jnp.zeros_like(beta)), rtol=1e-11, atol=1e-11)


@pytest.mark.integration
def test_the_chunked_delta_rule_is_stable_where_keys_repeat():
    """Identical keys and β = 1 (a token repeated): (I + A)⁻¹ has a power series of huge
    alternating terms, and the doubling inverse must still match the recurrence in float32."""
    from jaxdp.models.mixers import delta

    B, L, H, K = 1, 64, 1, 4
    k = jnp.full((B, L, H, K), 0.5, jnp.float32)  # unit norm
    v = _random((B, L, H, K), 0, jnp.float32)
    beta = jnp.ones((B, L, H), jnp.float32)
    expected = delta.delta_scan(k, k, v, beta)
    np.testing.assert_allclose(delta.delta_chunked(k, k, v, beta, chunk_size=64), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(expected[0, -1, 0], v[0, -1, 0], rtol=1e-5, atol=1e-6)  # the last write wins


@pytest.mark.integration
@pytest.mark.parametrize("form", ["scan", "chunked"])
def test_the_delta_rule_copies_the_last_value_written_to_a_slot(x64, form):
    """One-hot keys and β = 1 make S a memory of K slots: q = e_s reads back exactly the value last
    written with key e_s (docs/mixers.md, COPY)."""
    from jaxdp.models.mixers import delta

    B, L, H, K = 1, 30, 1, 5
    rng = np.random.default_rng(0)
    slots, values = rng.integers(0, K, size=L), rng.normal(size=(B, L, H, K))
    k = jnp.asarray(np.eye(K)[slots][None, :, None])
    q = jnp.asarray(np.eye(K)[rng.integers(0, K, size=L)][None, :, None])
    beta = jnp.ones((B, L, H))
    kernel = delta.delta_scan if form == "scan" else (lambda *a: delta.delta_chunked(*a, chunk_size=8))
    out = np.asarray(kernel(q, k, jnp.asarray(values), beta))
    for t in range(L):
        s = int(np.argmax(q[0, t, 0]))
        written = [j for j in range(t + 1) if slots[j] == s]
        expected = values[0, written[-1], 0] if written else np.zeros(K)
        np.testing.assert_allclose(out[0, t, 0], expected, rtol=0, atol=1e-12)


@pytest.mark.integration
def test_ssd_matches_its_definition_as_a_numpy_loop(x64):
    """o_i = Σ_{j<=i} Π_{j<t<=i} a_t (q_i·k_j) v_j, every form."""
    from jaxdp.models.mixers import ssd

    B, L, H, K = 2, 13, 2, 3
    q, k, v = (_random((B, L, H, K), s) for s in (6, 7, 8))
    log_a = -jnp.abs(_random((B, L, H), 9))
    a = np.exp(np.asarray(log_a))
    out = np.zeros((B, L, H, K))
    for b in range(B):
        for h in range(H):
            for i in range(L):
                for j in range(i + 1):
                    out[b, i, h] += (
                        np.prod(a[b, j + 1 : i + 1, h]) * float(q[b, i, h] @ k[b, j, h]) * np.asarray(v[b, j, h])
                    )
    for form in (
        ssd.ssd_scan(q, k, v, log_a),
        ssd.ssd_quadratic(q, k, v, log_a),
        ssd.ssd_chunked(q, k, v, log_a, chunk_size=5),
    ):
        np.testing.assert_allclose(form, out, rtol=1e-11, atol=1e-11)


def test_mamba2_scales_its_input_by_delta_and_adds_the_skip():
    """The mixer around the kernel: y = SSD(C, B, Δx) + D x before the gated norm (Dao & Gu 2024)."""
    from jaxdp.models.mixers import ssd
    from jaxdp.models.mixers.selective import gated_rms_norm

    cfg = small_config("mamba2").replace(options={"form": "scan"})
    q, k, v, aux = inputs(cfg, 9)
    aux = aux._replace(skip=jnp.full_like(aux.skip, 0.5))
    x = jax.nn.silu(v)
    y = ssd.ssd_scan(jax.nn.silu(q), jax.nn.silu(k), x * aux.dt[..., None], aux.log_a) + 0.5 * x
    np.testing.assert_allclose(
        cfg.mixer_impl.mix(q, k, v, aux, cfg), gated_rms_norm(y, aux.z, aux.scale, per_head=False), rtol=1e-5, atol=1e-6
    )
    assert bool(jnp.all(aux.log_a < 0)) and bool(jnp.all(aux.dt > 0))


# ----------------------------------------------------------------------------- the registry


def test_the_registry_lists_the_mixers_and_refuses_unknown_ones():
    assert mixers.available()[:9] == (
        "standard",
        "sparse",
        "linear",
        "window",
        "retention",
        "gated",
        "mamba2",
        "deltanet",
        "gated_deltanet",
    )
    with pytest.raises(mixers.ConfigError, match="choose one of standard, sparse, linear, window, retention, gated"):
        ModelConfig(mixer="mamba", max_len=8, vocab_size=4)
    assert ModelConfig(mixer="window", max_len=8, vocab_size=4).mixer == "window"


def test_no_dispatch_on_a_mixer_name_outside_the_mixers():
    """The mixer's name picks its module through the registry and nowhere else."""
    names = "|".join(mixers.available())
    pattern = re.compile(
        rf"""(==|!=)\s*["']({names})["']|["']({names})["']\s*(==|!=)|\bif\b.* in \(["']({names})["']"""
    )
    offenders = []
    for folder in ("jaxdp", "experiments"):
        for path in (ROOT / folder).rglob("*.py"):
            if "mixers" in path.parts:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_options_objects_round_trip_through_json():
    for name in mixers.available():
        cfg = small_config(name)
        again = ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
        assert again == cfg and dataclasses.asdict(again.options) == dataclasses.asdict(cfg.options)


# ------------------------------------------------------------------ a mixer from outside


@pytest.mark.integration
def test_a_mixer_registered_by_a_test_module_trains_and_decodes(tmp_path):
    """Registered from tests/models/toy_mixer.py, nothing in jaxdp touched: the public API
    builds it, trains it, decodes it with its decode state (equal to full re-forwards), counts its
    FLOPs and checks its forms against each other."""
    from jaxdp import tasks
    from jaxdp.evaluation import decode
    from jaxdp.models import flops
    from jaxdp.tasks.builder import build
    from jaxdp.training.protocol import TrainConfig
    from jaxdp.training.run import restore_model, train
    from tests.models.toy_mixer import register_toy

    register_toy()
    assert "toy_mean" in mixers.available()
    task = tasks.get("lis", 4, value_range=8)
    train_set, test_set = build(task, 512, 32, seed=0, progress=False)
    cfg = ModelConfig(mixer="toy_mean", dim=16, num_layers=2, max_len=task.max_len, vocab_size=len(task.vocab))
    result = train(
        tmp_path / "run",
        task,
        cfg,
        TrainConfig(epochs=3, batch_size=32, lr=3e-3, warmup_epochs=0, log_every=8),
        train_set,
        test_set,
        progress=False,
    )
    losses = [json.loads(line)["loss"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert losses[-1] < losses[0] and 0 <= result["accuracy"] <= 1 and result["examples"] == 32
    model, _ = restore_model(tmp_path / "run")
    eos = task.vocab.index(tasks.EOS)
    fast = decode.generate(model, test_set.tokens[:16], test_set.prompt_len[:16], eos_id=eos, batch_size=8)
    slow = decode.generate(model, test_set.tokens[:16], test_set.prompt_len[:16], eos_id=eos, batch_size=8, full=True)
    np.testing.assert_array_equal(fast, slow)
    assert flops.decode_flops(cfg, 5, task.max_len) > flops.forward_flops(cfg, 5)
    args = inputs(small_config("toy_mean"), 12)
    toy = small_config("toy_mean")
    np.testing.assert_allclose(mix(toy, "cumsum", *args), mix(toy, "masked", *args), **TOL[jnp.float32])
