"""Proposition 5.1's step rule (constructions/arithmetic.py) against the task's own solver."""

import itertools

import numpy as np
import pytest

from constructions import arithmetic as ar
from jaxdp import tasks
from jaxdp.tasks.arithmetic import OPS


def chain_by_rule(task, prompt: list[str]) -> list[str]:
    """The chain the five layers write, teacher-forced on the solver's own chain."""
    tokens = prompt + task.solve(prompt)
    return [p.next_token for p in ar.step_rule(tokens, task.modulus, len(prompt) - 1)]


def test_every_expression_of_one_operator_is_evaluated():
    task = tasks.get("arithmetic", 1)
    for a, op, b in itertools.product(range(task.modulus), OPS, range(task.modulus)):
        if op == "/" and b == 0:
            continue
        prompt = [str(a), op, str(b), "="]
        assert chain_by_rule(task, prompt) == task.solve(prompt), prompt


@pytest.mark.parametrize("n,count", [(2, 1500), (3, 600), (6, 300), (10, 150), (13, 100), (16, 100)])
def test_the_rule_writes_every_next_token_of_the_chain(n, count):
    """Every next token of every sampled expression, up to the paper's largest size (16)."""
    task = tasks.get("arithmetic", n)
    rng = np.random.default_rng(n)
    for _ in range(count):
        example = task.sample(rng)
        assert chain_by_rule(task, example.prompt) == example.target, " ".join(example.prompt)


def test_brackets_and_precedence_are_what_choose_the_handle():
    """Hand-picked cases where the leftmost ``a op b`` is not the one evaluated."""
    task = tasks.get("arithmetic", 3)
    for text, first_step in [
        ("1 + 2 * 3 =", "1 + 6"),  # * before +
        ("( 1 + 2 ) * 3 =", "3 * 3"),  # the brackets go with the step
        ("2 - 3 - 4 =", "10 - 4"),  # left to right (mod 11)
        ("2 * ( 3 - 4 ) =", "2 * 10"),
    ]:
        prompt = text.split()
        chain = chain_by_rule(task, prompt)
        assert " ".join(chain[: chain.index("=")]) == first_step, text
        assert chain == task.solve(prompt)


def test_a_wrong_precedence_rule_is_caught(monkeypatch):
    """The check can fail: with + and − judged as tight, 1 + 2 * 3 is evaluated from the left."""
    task = tasks.get("arithmetic", 2)
    monkeypatch.setattr(ar, "TIGHT", ("*", "/", "+", "-"))
    assert chain_by_rule(task, "1 + 2 * 3 =".split()) != task.solve("1 + 2 * 3 =".split())


@pytest.mark.parametrize("n", [1, 2, 6, 10, 13, 16])
def test_every_head_reads_the_past_within_the_reach_bound(n):
    task = tasks.get("arithmetic", n)
    rng = np.random.default_rng(100 + n)
    for _ in range(50):
        example = task.sample(rng)
        first = len(example.prompt) - 1
        for t, position in enumerate(ar.step_rule(example.tokens, task.modulus, first), start=first):
            assert all(0 <= r <= t for r in position.reads)
            assert t - min(position.reads) <= ar.reach_bound(n)


def test_the_sparse_window_needs_a_bounded_number_of_blocks():
    """k·B covers the reach with B = 2^⌊log₂ √L⌋ and k at most 12 at every size up to 100:
    reach ≈ 8n, B > √L / 2 and L = 2n² + 2n + 2."""
    ks = [ar.local_blocks_needed(n, tasks.get("arithmetic", n).max_len) for n in range(1, 101)]
    assert max(ks) <= 12
    assert ar.reach_bound(100) > 12 * 20  # while the reach itself grows with n
