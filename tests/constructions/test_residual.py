"""Layouts, MLP placement and writing parameters by path (constructions.residual)."""

import numpy as np
import pytest
from flax import nnx

from constructions.handset import construction_config
from constructions.residual import MLP, Layout, attention_params, block_params, ffn_params, write_params
from jaxdp.models import Block


def test_layout_places_names_in_order_and_refuses_bad_declarations():
    layout = Layout(a=2, b=3)
    assert layout.dim == 5 and layout.indices(["b", "a"]).tolist() == [2, 3, 4, 0, 1]
    assert layout.padded(4).dim == 8 and layout.padded(5).dim == 5
    with pytest.raises(ValueError, match="'a' is declared twice"):
        Layout([("a", 1)], a=2)
    with pytest.raises(ValueError, match="positive integer"):
        Layout(a=0)
    with pytest.raises(KeyError, match="no subspace 'c'"):
        layout.slice("c")
    with pytest.raises(ValueError, match="'b' has size 3"):
        layout.embed(b=[1.0, 2.0])


def test_mlps_side_by_side_compute_each_part_on_its_own_subspaces():
    rng = np.random.default_rng(0)
    parts = [
        MLP(rng.normal(size=(2, 3)), rng.normal(size=3), rng.normal(size=(3, 1)), rng.normal(size=1)),
        MLP(rng.normal(size=(1, 2)), rng.normal(size=2), rng.normal(size=(2, 2)), rng.normal(size=2)),
    ]
    relu = lambda m, x: np.maximum(x @ m.w1 + m.b1, 0) @ m.w2 + m.b2  # noqa: E731
    x = rng.normal(size=(5, 3))
    layout = Layout(u=2, w=1, out1=1, out2=2)
    ffn = ffn_params(layout, 8, [(parts[0], "u", "out1"), (parts[1], "w", "out2")])
    h = np.maximum(layout.embed(u=x[:, :2], w=x[:, 2:]) @ ffn["fc1.kernel"] + ffn["fc1.bias"], 0)
    y = h @ ffn["fc2.kernel"] + ffn["fc2.bias"]
    np.testing.assert_allclose(layout.read(y, "out1"), relu(parts[0], x[:, :2]))
    np.testing.assert_allclose(layout.read(y, "out2"), relu(parts[1], x[:, 2:]))
    with pytest.raises(ValueError, match="cannot read"):
        ffn_params(layout, 8, [(parts[0], "w", "out1")])
    with pytest.raises(ValueError, match="more than hidden_dim"):
        ffn_params(layout, 4, [(parts[0], "u", "out1"), (parts[1], "w", "out2")])


def test_write_params_sets_every_path_and_refuses_unknown_missing_or_misshapen(x64):
    layout = Layout(a=4)
    cfg = construction_config(layout, 4)
    block = Block(cfg, rngs=nnx.Rngs(0))
    rng = np.random.default_rng(1)
    heads = {0: dict(query=rng.normal(size=(4, 4)), out=rng.normal(size=(4, 4)), key_bias=np.ones(4))}
    params = block_params(attention_params(layout, 1, heads), ffn_params(layout, cfg.hidden_dim, []))
    write_params(block, params)
    np.testing.assert_array_equal(np.asarray(block.attn.query.kernel[...]), heads[0]["query"])
    np.testing.assert_array_equal(np.asarray(block.attn.key.bias[...]), np.ones(4))
    np.testing.assert_array_equal(np.asarray(block.attn.value.kernel[...]), 0.0)
    with pytest.raises(KeyError, match="unwritten paths \\['attn.key.bias'\\]"):
        write_params(block, {k: v for k, v in params.items() if k != "attn.key.bias"})
    with pytest.raises(KeyError, match="unknown paths \\['attn.nope'\\]"):
        write_params(block, {**params, "attn.nope": np.zeros(1)})
    with pytest.raises(ValueError, match="ffn.fc1.bias has shape"):
        write_params(block, {**params, "ffn.fc1.bias": np.zeros(3)})
    with pytest.raises(ValueError, match="must have shape"):
        attention_params(layout, 2, {0: dict(query=np.zeros((4, 4)))})
