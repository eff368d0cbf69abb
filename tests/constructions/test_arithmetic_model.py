"""Proposition 5.1's hand-set model (constructions/arithmetic_model.py): every next token of
every expression of a test set, standard and sparse, float64 and float32, at a D that does not
change with n."""

import functools
import itertools
import math

import numpy as np
import pytest

from constructions import arithmetic as rule
from constructions import arithmetic_model as am
from constructions import bounds
from jaxdp import tasks
from jaxdp.models.masks import default_block_size
from jaxdp.tasks.arithmetic import OPS

pytestmark = [pytest.mark.usefixtures("x64"), pytest.mark.integration]
SIZES = (1, 3, 7)  # n = 7: L = 113, beyond the paper's smallest Arithmetic length (87)


def every_expression_of_one_operator(task) -> list[list[str]]:
    return [
        [str(a), op, str(b), "="]
        for a, op, b in itertools.product(range(task.modulus), OPS, range(task.modulus))
        if not (op == "/" and b == 0)
    ]


@functools.cache
def chains_of(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Ids [count, max_len] of whole chains (0-padded) and the positions that write a CoT token."""
    task = tasks.get("arithmetic", n)
    if n == 1:
        prompts = every_expression_of_one_operator(task)
    else:
        rng = np.random.default_rng(n)
        prompts = [task.sample(rng).prompt for _ in range(150 if n < 7 else 50)]
    return am.encode(task, prompts)


def mismatches(n: int, mixer: str, dtype: str = "float64", **compile_options) -> int:
    """Expressions of the test set with a wrong next token anywhere in their chain."""
    model = am.compile_arithmetic(tasks.get("arithmetic", n), mixer, **compile_options)
    return am.wrong_chains(model, *chains_of(n), dtype)


@pytest.mark.parametrize("mixer", am.MIXERS)
@pytest.mark.parametrize("n", SIZES)
def test_every_next_token_of_every_expression_is_right(n, mixer):
    assert chains_of(1)[0].shape[0] == 11 * 4 * 11 - 11  # every a op b but division by 0
    assert mismatches(n, mixer) == 0


#: the standard model's twins of the sparse checks below run with -m slow (same weights, another mask)
SPARSE_FIRST = [am.MIXERS[1], pytest.param(am.MIXERS[0], marks=pytest.mark.slow)]


@pytest.mark.parametrize("mixer", SPARSE_FIRST)
def test_float32_is_enough(mixer):
    assert mismatches(1, mixer, "float32") == mismatches(7, mixer, "float32") == 0


@pytest.mark.parametrize("mixer", SPARSE_FIRST)
def test_greedy_decoding_writes_the_chain(mixer):
    task = tasks.get("arithmetic", 7)
    model = am.compile_arithmetic(task, mixer)
    tokens, writes = chains_of(7)
    for row in range(3):
        length = int(writes[row].nonzero()[0][-1]) + 2
        prompt_len = int(writes[row].nonzero()[0][0]) + 1
        assert am.generate(model, tokens[row, :prompt_len].tolist()) == tokens[row, :length].tolist()


def test_d_heads_and_layers_do_not_change_with_n_while_the_linear_bound_grows():
    models = [am.compile_arithmetic(tasks.get("arithmetic", n), "sparse") for n in (1, 3, 7, 16)]
    shapes = {(m.handset.layout.dim, m.handset.config.num_heads, m.handset.config.num_layers) for m in models}
    widths = {m.handset.config.hidden_dim for m in models}
    assert shapes == {(am.layout_for(20).dim, am.layout_for(20).dim // am.HEAD, 5)} and len(widths) == 1
    assert max(len(stage_heads(m)) for m in models[:1]) == 5  # the paper's five heads in a layer
    c1 = [bounds.c1_arithmetic_linear(n, 3, 4, math.ceil(math.log2(2 * n * n))) for n in (4, 16, 64, 256)]
    assert c1 == sorted(c1) and c1[-1] > c1[0]


def stage_heads(model) -> list[int]:
    """The heads of the first block that score anything (a query map that is not zero)."""
    q = model.handset.blocks[0]["attn.query.kernel"].reshape(model.handset.layout.dim, -1, am.HEAD)
    qb = model.handset.blocks[0]["attn.query.bias"].reshape(-1, am.HEAD)
    return [h for h in range(q.shape[1]) if np.abs(q[:, h]).max() > 0 or np.abs(qb[h]).max() > 0]


def test_the_sparse_model_uses_the_papers_block_size_and_needs_its_window():
    task = tasks.get("arithmetic", 7)
    options = am.compile_arithmetic(task, "sparse").handset.config.options
    assert options.block_size == default_block_size(task.max_len)
    assert options.local_blocks == rule.local_blocks_needed(7, task.max_len)
    assert mismatches(7, "sparse", local_blocks=1) > 0  # the check can fail: a window that is too short


@pytest.mark.parametrize("dtype", ["float32", pytest.param("float64", marks=pytest.mark.slow)])
def test_every_integer_feature_stays_far_inside_its_tolerance(dtype):
    """Heads and MLPs each spend ε = 1e−6 (their λ); the gates and one-hots tolerate 1/4, the
    readout 1/2. Measured on the n = 7 test set."""
    model = am.compile_arithmetic(tasks.get("arithmetic", 7), "sparse")
    tokens, writes = chains_of(7)
    errors = am.feature_errors(model, tokens[:20], writes[:20], dtype)
    assert set(errors) == {name for names in am.FEATURES for name in names}
    assert max(errors.values()) < 1e-3, errors
