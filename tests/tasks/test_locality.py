"""`locality` is validated two ways, with local rules written here from docs/paper.md §3:

* sufficiency — each CoT token is recomputed from the tokens its declared dependencies point
  at, every other token masked (reading one fails), so the declared m is an upper bound;
* necessity — the farthest declared dependency is perturbed; where that changes the recomputed
  token the dependency is genuine, and the farthest genuine distance must equal m.
Arithmetic declares dependencies per block (§5.2: each block depends only on the previous one),
so there the perturbation must change the recomputed block. In the benchmark's order a block is
not a function of the previous one (the build history chooses the step), so the rule there gives
the set of blocks one step can lead to, and the true block must be in it.
"""

import numpy as np
import pytest

from jaxdp import tasks
from tests.tasks import reference


class Masked(list):
    """A token sequence where only the declared positions may be read."""

    def __init__(self, tokens, visible):
        super().__init__(tok if i in visible else None for i, tok in enumerate(tokens))

    def __getitem__(self, i):
        value = super().__getitem__(i)
        assert value is not None, f"the rule needed position {i}, which is not a declared dependency"
        return value


def _shape(prompt):
    bar = prompt.index("|")
    return bar, len(prompt) - bar - 2  # N, M


def ed_rule(prompt, seen, p, local):
    """Recompute token p of an ED / ED_local sequence from `seen` and the layout (N, M)."""
    n, m = _shape(prompt)
    start = n + m + 2
    cell, char = {}, {}  # (i, j) -> position of dp(i, j); ("a"|"b", i, k) -> position of a letter copy
    for k in range(1, n + 1):
        char["a", 0, k] = k - 1
    for j in range(1, m + 1):
        char["b", 0, j] = n + j
    pos = start
    for i in range(1, n + 1):
        if local:
            for k in range(i, n + 1):
                char["a", i, k] = pos
                pos += 1
            pos += 1  # '|'
        for j in range(1, m + 1):
            if local:
                char["b", i, j] = pos
                pos += 1
            cell[i, j] = pos
            pos += 1
        pos += 1  # ','
    answer = pos + 1
    if p == answer:
        return seen[cell[n, m]]
    for (kind, i, k), q in char.items():
        if q == p:  # a restated letter: the copy one row up
            return seen[char[kind, i - 1, k]]
    ((i, j),) = [ij for ij, q in cell.items() if q == p]
    row = i if local else 0
    a, b = seen[char["a", row, i]], seen[char["b", row, j]]
    value = lambda ii, jj: int(seen[cell[ii, jj]]) if ii and jj else (ii + jj)  # noqa: E731 (benchmark border)
    return str(min(value(i - 1, j) + 2, value(i, j - 1) + 2, value(i - 1, j - 1) + (0 if a == b else 3)))


def lis_rule(prompt, seen, p):
    n = len(prompt) - 1
    if p == 2 * n + 2:
        return str(max(int(seen[n + 1 + i]) for i in range(n)))
    i = p - n - 1
    return str(1 + max([int(seen[n + 1 + j]) for j in range(i) if int(seen[j]) < int(seen[i])], default=0))


def arithmetic_rule(tokens, seen, p, order):
    """The blocks the block containing p can be, recomputed from the previous block alone."""
    starts = [0] + [i + 1 for i, t in enumerate(tokens) if t == "="]
    k = starts.index(max(s for s in starts if s <= p))
    previous = [seen[q] for q in range(starts[k - 1], starts[k] - 1)]
    if order == "benchmark":
        return reference.undo_steps(previous)
    return {tuple(reference.arithmetic_chain(previous)[0])}


def rule(name, example, seen, p, options):
    """The values token p (for arithmetic: its block) may take, from its dependencies alone."""
    if name == "lis":
        return {lis_rule(example.prompt, seen, p)}
    if name == "arithmetic":
        return arithmetic_rule(example.tokens, seen, p, options.get("order", "leftmost"))
    return {ed_rule(example.prompt, seen, p, local=name == "ed_local")}


def truth(name, example, p):
    """What `rule` must return for the true sequence."""
    if name != "arithmetic":
        return example.tokens[p]
    starts = [0] + [i + 1 for i, t in enumerate(example.tokens) if t == "="]
    k = starts.index(max(s for s in starts if s <= p))
    end = starts[k + 1] - 1 if k + 1 < len(starts) else len(example.tokens) - 1
    return tuple(example.tokens[starts[k] : end])


def alternatives(name, token):
    if token.isalpha():
        return [c for c in "abcdefghijklmnopqrstuvwxyz" if c != token]
    v = int(token)
    values = range(11) if name == "arithmetic" else {0, 1, 2, 3, 500, *range(max(0, v - 3), v + 4)}
    return [str(x) for x in values if x != v]


CASES = [
    ("arithmetic", 3, {}),
    ("arithmetic", 6, {}),
    ("arithmetic", 3, {"order": "benchmark"}),
    ("arithmetic", 6, {"order": "benchmark"}),
    ("lis", 5, {}),
    ("lis", 8, {}),
    ("ed", 3, {}),
    ("ed", 6, {}),
    ("ed_local", 3, {}),
    ("ed_local", 6, {}),
]


@pytest.mark.integration
@pytest.mark.parametrize("name,size,options", CASES)
def test_declared_dependencies_are_sufficient_and_the_farthest_is_genuine(name, size, options):
    task = tasks.get(name, size, **options)
    rng = np.random.default_rng(3)
    examples = [task.sample(rng) for _ in range(300)]
    genuine_m, block_changes, blocks = 0, 0, 0
    for ex in examples:
        deps = task.dependencies(ex)
        assert set(deps) <= set(range(len(ex.prompt), len(ex.tokens) - 1))  # CoT tokens only
        for p, d in deps.items():  # sufficiency
            assert all(q < p for q in d)
            assert truth(name, ex, p) in rule(name, ex, Masked(ex.tokens, set(d)), p, options), (ex.tokens, p)
        farthest = max(p - min(d) for p, d in deps.items())
        for p, d in deps.items():  # necessity of the farthest dependency
            q = min(d)
            if name == "arithmetic":  # perturb the first number of the previous block
                q = next(i for i in d if ex.tokens[i].isdigit())
            elif p - q != farthest:
                continue
            changed = False
            for alt in alternatives(name, ex.tokens[q]):
                perturbed = list(ex.tokens)
                perturbed[q] = alt
                try:
                    changed |= truth(name, ex, p) not in rule(name, ex, Masked(perturbed, set(d)), p, options)
                except (AssertionError, ZeroDivisionError):  # arithmetic: a 0 made a divisor
                    pass
            if name == "arithmetic":
                blocks += 1
                block_changes += changed
            elif changed:
                genuine_m = max(genuine_m, p - q)
    m = tasks.locality(task, examples)
    if name == "arithmetic":
        assert block_changes >= 0.9 * blocks  # the previous block genuinely drives the next one
        longest_two_blocks = max(len(" ".join(ex.tokens[:-1]).split(" = ")[0].split()) for ex in examples)
        assert m <= 2 * longest_two_blocks + 1
    else:
        assert genuine_m == m


def test_locality_grows_like_L_for_ed_and_lis_but_like_n_for_ed_local():
    rng = np.random.default_rng(0)
    for name, size in (("ed", 20), ("lis", 250), ("ed_local", 20), ("ed_local", 6)):
        task = tasks.get(name, size)
        m = tasks.locality(task, [task.sample(rng) for _ in range(100)])
        if name == "ed_local":
            n, big_m = size, size + 2
            assert m == n + 2 * big_m + 3  # documented bound N + 2M + 3, reached at N = n, M = n + 2
        else:
            assert m >= 0.9 * task.max_len
