"""`decode.greedy` (decode state, grown by segments) against `decode.greedy_full` (a full
forward at every position) on random models long enough to span several segments."""

from __future__ import annotations

import numpy as np
import pytest
from flax import nnx

from jaxdp.evaluation import decode
from jaxdp.models import ModelConfig, Transformer

pytestmark = pytest.mark.integration  # trains, runs commands or compiles whole models


def test_segment_ends():
    assert decode.segment_ends(5, 150, 64) == [64, 128, 150]
    assert decode.segment_ends(64, 150, 64) == [128, 150]
    assert decode.segment_ends(23, 64, 64) == [64]
    assert decode.segment_ends(100, 120, 64) == [120]
    for P, T in [(1, 300), (63, 64), (64, 129), (200, 211)]:
        ends = decode.segment_ends(P, T)
        assert ends[-1] == T and ends[0] > P and all(b - a == decode.SEGMENT for a, b in zip(ends[:-2], ends[1:-1]))


@pytest.mark.parametrize("mixer", ["standard", "sparse", "linear"])
def test_segmented_greedy_equals_full_reforward(mixer):
    T, vocab = 150, 11
    cfg = ModelConfig(mixer=mixer, dim=32, num_heads=4, num_layers=2, max_len=T, vocab_size=vocab)
    model = Transformer(cfg, rngs=nnx.Rngs(3))
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, vocab, size=(6, T)).astype(np.int32)
    prompt_len = np.array([5, 9, 30, 64, 70, 100], np.int32)
    eos = 4  # a random model writes it now and then: rows stop at different places
    fast = decode.generate(model, tokens, prompt_len, eos_id=eos, batch_size=6)
    slow = decode.generate(model, tokens, prompt_len, eos_id=eos, batch_size=6, full=True)
    np.testing.assert_array_equal(fast, slow)
    keep = np.arange(T)[None] < prompt_len[:, None]
    np.testing.assert_array_equal(np.where(keep, fast, 0), np.where(keep, tokens, 0))
