"""Every fast kernel against its slow twin, and each reference against the paper's formulas."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdp.models.mixers.linear import (
    feature_map,
    linear_chunked,
    linear_init,
    linear_quadratic,
    linear_scan,
    linear_step,
)
from jaxdp.models.mixers.sparse import sparse_blocked, sparse_init, sparse_masked, sparse_prefill, sparse_step
from jaxdp.models.mixers.standard import kv_init, kv_step, standard
from tests.models.reference import eq6_set, linear_attention, softmax_attention

F32 = dict(rtol=1e-5, atol=1e-6)
F64 = dict(rtol=1e-12, atol=1e-13)


def qkv(L, *, batch=2, heads=3, K=8, seed=0, dtype=jnp.float32, scale=1.0):
    rng = np.random.default_rng(seed)
    return [jnp.asarray(scale * rng.normal(size=(batch, L, heads, K)), dtype) for _ in range(3)]


def run(fn, *arrays, **static):
    """`fn(*arrays, **static)` under jit: one compile is much cheaper than op-by-op dispatch."""
    return jax.jit(functools.partial(fn, **static))(*arrays)


def sparse_args(B, k, c):
    return dict(block_size=B, local_blocks=k, global_tokens=c)


SPARSE_CASES = [  # (L, B, k, c): partial last blocks, c = 0, c = B, k > 1, B = 1, B >= L
    (37, 4, 1, 1),
    (64, 8, 1, 1),
    (64, 8, 2, 2),
    (100, 16, 1, 0),
    (33, 4, 3, 4),
    (50, 1, 1, 1),
    (50, 3, 1, 1),
    (5, 8, 1, 1),
    (129, 8, 1, 3),
    (40, 8, 4, 1),
]


def test_standard_matches_loop():
    q, k, v = qkv(11)
    np.testing.assert_allclose(run(standard, q, k, v), softmax_attention(q, k, v, lambda i: range(1, i + 1)), **F32)


@pytest.mark.parametrize("L,B,k,c", [(23, 4, 1, 1), (16, 2, 2, 1), (19, 4, 1, 0)])
def test_sparse_masked_matches_eq6_loop(L, B, k, c):
    q, k_, v = qkv(L)
    expected = softmax_attention(q, k_, v, lambda i: eq6_set(i, B, k, c))
    np.testing.assert_allclose(sparse_masked(q, k_, v, **sparse_args(B, k, c)), expected, **F32)


@pytest.mark.integration
@pytest.mark.parametrize("L,B,k,c", SPARSE_CASES)
def test_blocked_sparse_equals_masked(L, B, k, c):
    q, k_, v = qkv(L, seed=L + B)
    args = sparse_args(B, k, c)
    np.testing.assert_allclose(run(sparse_blocked, q, k_, v, **args), run(sparse_masked, q, k_, v, **args), **F32)


@pytest.mark.parametrize("L,B,k,c", SPARSE_CASES[:5])
def test_blocked_sparse_equals_masked_float64(x64, L, B, k, c):
    q, k_, v = qkv(L, dtype=jnp.float64, scale=3.0)
    args = sparse_args(B, k, c)
    out = run(sparse_blocked, q, k_, v, **args)
    assert out.dtype == jnp.float64
    np.testing.assert_allclose(out, run(sparse_masked, q, k_, v, **args), **F64)


@pytest.mark.integration
@pytest.mark.parametrize("L,B", [(20, 20), (20, 32), (7, 8)])
def test_sparse_window_covering_everything_is_standard(L, B):
    q, k, v = qkv(L)
    expected = run(standard, q, k, v)
    for fn in (sparse_blocked, sparse_masked):
        np.testing.assert_allclose(fn(q, k, v, **sparse_args(B, 1, 1)), expected, **F32)


def test_linear_quadratic_matches_eq8_loop():
    q, k, v = qkv(13)
    np.testing.assert_allclose(run(linear_quadratic, q, k, v), linear_attention(q, k, v), **F32)


@pytest.mark.integration
@pytest.mark.parametrize("L", [1, 5, 37, 64, 100])
@pytest.mark.parametrize("C", [1, 4, 7, 16, 64])
def test_linear_chunked_and_scan_equal_quadratic(L, C):
    q, k, v = qkv(L, seed=L * C)
    ref = run(linear_quadratic, q, k, v)
    np.testing.assert_allclose(run(linear_chunked, q, k, v, chunk_size=C), ref, **F32)
    if C == 1:  # the scan has no chunk size: check it once per length
        np.testing.assert_allclose(run(linear_scan, q, k, v), ref, **F32)


@pytest.mark.parametrize("L,C", [(37, 8), (64, 16), (5, 3)])
def test_linear_forms_agree_float64(x64, L, C):
    q, k, v = qkv(L, dtype=jnp.float64, scale=2.0)
    ref = run(linear_quadratic, q, k, v)
    np.testing.assert_allclose(run(linear_chunked, q, k, v, chunk_size=C), ref, **F64)
    np.testing.assert_allclose(run(linear_scan, q, k, v), ref, **F64)
    np.testing.assert_allclose(ref, linear_attention(q, k, v), **F64)


def test_feature_map_is_positive_elu_plus_one():
    x = jnp.linspace(-30.0, 5.0, 101)
    phi = feature_map(x)
    assert jnp.all(phi > 0)
    np.testing.assert_allclose(phi, np.where(x > 0, x + 1, np.exp(x)), rtol=1e-6)


def test_linear_step_state_is_lemma_a8_sums():
    q, k, v = qkv(9)
    state = linear_init(2, 3, 8, jnp.float32)
    for i in range(9):
        _, state = linear_step(state, q[:, i], k[:, i], v[:, i])
    fk = np.asarray(feature_map(k), np.float64)
    np.testing.assert_allclose(state.S_BxHxKxK, np.einsum("blhk,blhv->bhkv", fk, v), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(state.z_BxHxK, fk.sum(axis=1), rtol=1e-5)


def test_sparse_decode_cache_reads_B_plus_L_over_B_keys():
    B, k, c, T = 16, 1, 1, 256
    cache = sparse_init(1, T, 4, 8, jnp.float32, **sparse_args(B, k, c))
    assert cache.local_k.shape[1] == k * B and cache.summary_k.shape[1] == c * T // B


@pytest.mark.integration
@pytest.mark.parametrize("L,B,k,c", [(30, 4, 1, 1), (30, 4, 2, 2), (30, 4, 1, 0), (17, 1, 1, 1), (9, 16, 1, 1)])
def test_sparse_step_equals_masked(L, B, k, c):
    q, k_, v = qkv(L)
    args = sparse_args(B, k, c)
    ref = run(sparse_masked, q, k_, v, **args)
    P = L // 3
    cache = sparse_prefill(sparse_init(2, L, 3, 8, jnp.float32, **args), k_[:, :P], v[:, :P], **args)
    step = jax.jit(lambda cache, q, k, v, p: sparse_step(cache, q, k, v, p, **args))
    for p in range(P, L):
        o, cache = step(cache, q[:, p], k_[:, p], v[:, p], p)
        np.testing.assert_allclose(o, ref[:, p], **F32)


def test_kv_step_equals_standard():
    q, k, v = qkv(12)
    ref = run(standard, q, k, v)
    cache = kv_init(2, 16, 3, 8, jnp.float32)
    for p in range(12):
        o, cache = kv_step(cache, q[:, p], k[:, p], v[:, p], p)
        np.testing.assert_allclose(o, ref[:, p], **F32)


@pytest.mark.integration
@pytest.mark.parametrize(
    "name", ["standard", "sparse_masked", "sparse_blocked", "linear_quadratic", "linear_chunked", "linear_scan"]
)
def test_gradients_are_finite_with_padding(name):
    """Lengths that are not a multiple of the block or chunk pad internally; padding must not
    leak NaN into the gradient."""
    static = {
        "sparse_masked": sparse_args(4, 1, 1),
        "sparse_blocked": sparse_args(4, 1, 1),
        "linear_chunked": dict(chunk_size=8),
    }.get(name, {})
    fn = functools.partial(globals()[name], **static)
    grads = jax.jit(jax.grad(lambda *a: fn(*a).sum(), argnums=(0, 1, 2)))(*qkv(21))
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads)


@pytest.mark.integration
def test_fused_attention_call_equals_standard_and_cudnn_is_skipped_off_gpu():
    """`standard.fused` (the cuDNN call) in its plain-XLA form equals the masked kernel, so the
    layout and scale handed to cuDNN are right; off a GPU, or with dropout or float32, the
    standard mixer never takes the cuDNN path."""
    from jaxdp.models.mixers import standard

    rng = np.random.default_rng(0)
    q, k, v = (jnp.asarray(rng.normal(size=(2, 37, 4, 16)), jnp.float32) for _ in range(3))
    np.testing.assert_allclose(
        standard.fused(q, k, v, implementation="xla"), standard.standard(q, k, v), rtol=2e-5, atol=2e-6
    )
    half = q.astype(jnp.bfloat16)
    assert not standard.cudnn_applies(q) and not standard.cudnn_applies(half, probs_fn=lambda p: p)
    assert standard.cudnn_applies(half) == (jax.default_backend() == "gpu")


def bf16_model(dropout: float):
    from flax import nnx

    from jaxdp.models import ModelConfig, Transformer

    cfg = ModelConfig(mixer="standard", dim=64, max_len=32, vocab_size=16, dtype="bfloat16", dropout=dropout)
    return Transformer(cfg, rngs=nnx.Rngs(0))


def test_the_model_hands_its_mixer_no_dropout_where_none_applies():
    """The standard mixer may take cuDNN's kernel only without a probabilities function: the
    model must hand it none in evaluation or at rate 0, and its dropout in training."""
    from jaxdp.models.mixers import standard

    model = bf16_model(dropout=0.1)
    attn, half = model.blocks[0].attn, jnp.zeros((1, 8, 4, 16), jnp.bfloat16)
    assert callable(attn.probs_fn()) and callable(attn.probs_fn(deterministic=False))
    assert attn.probs_fn(deterministic=True) is None
    model.eval()
    assert attn.probs_fn() is None and callable(attn.probs_fn(deterministic=False))
    assert standard.cudnn_applies(half, attn.probs_fn()) == (jax.default_backend() == "gpu")
    model.train()
    assert not standard.cudnn_applies(half, attn.probs_fn())
    assert bf16_model(dropout=0.0).blocks[0].attn.probs_fn() is None


def lowered_forward_text(model) -> str:
    """The forward's StableHLO: cuDNN's attention shows as a `__cudnn$fmha...` custom call."""
    from flax import nnx

    graphdef, state = nnx.split(model)
    forward = jax.jit(lambda s, t: nnx.merge(graphdef, s)(t))
    return forward.lower(state, jnp.ones((2, 32), jnp.int32)).as_text()


@pytest.mark.gpu
def test_the_bfloat16_model_runs_cudnn_attention_on_gpu_in_evaluation():
    model = bf16_model(dropout=0.1)
    assert "fmha" not in lowered_forward_text(model)  # training: dropout on the probabilities
    model.eval()
    assert "fmha" in lowered_forward_text(model)


@pytest.mark.gpu
def test_cudnn_attention_equals_standard_on_gpu():
    from jaxdp.models.mixers import standard

    rng = np.random.default_rng(0)
    q, k, v = (jnp.asarray(rng.normal(size=(2, 64, 4, 32)), jnp.bfloat16) for _ in range(3))
    expected = standard.standard(q.astype(jnp.float32), k.astype(jnp.float32), v.astype(jnp.float32))
    np.testing.assert_allclose(np.asarray(standard.fused(q, k, v), np.float32), expected, atol=3e-2)
