"""Independent solvers for the tests, written from docs/paper.md §3 without the generators' code.

Arithmetic works on a parse tree (recursive descent) where the library works on token lists;
ED is a memoised top-down recursion where the library fills tables; LIS is checked against a
brute force over subsequences for small N and a direct O(N^2) DP otherwise.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

P = 11
PREC = {"+": 1, "-": 1, "*": 2, "/": 2}


# --- arithmetic ----------------------------------------------------------------------------
@dataclass
class Node:
    op: str | None = None  # None for a number
    value: int = 0
    left: Node | None = None
    right: Node | None = None


def parse(tokens: list[str]) -> Node:
    """Standard precedence, left-associative."""
    pos = 0

    def atom() -> Node:
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        if tok == "(":
            node = expr()
            assert tokens[pos] == ")", tokens
            pos += 1
            return node
        assert tok.isdigit(), tokens
        return Node(value=int(tok))

    def level(ops, sub):
        def parse_level() -> Node:
            nonlocal pos
            node = sub()
            while pos < len(tokens) and tokens[pos] in ops:
                op = tokens[pos]
                pos += 1
                node = Node(op, left=node, right=sub())
            return node

        return parse_level

    term = level(("*", "/"), atom)
    expr = level(("+", "-"), term)
    tree = expr()
    assert pos == len(tokens), tokens
    return tree


def evaluate(node: Node, p: int = P) -> int:
    if node.op is None:
        return node.value
    a, b = evaluate(node.left, p), evaluate(node.right, p)
    if node.op == "/":
        assert b != 0, "division by zero"
        return a * pow(b, p - 2, p) % p
    return {"+": a + b, "-": a - b, "*": a * b}[node.op] % p


def render(node: Node, parent: str | None = None, right: bool = False) -> list[str]:
    if node.op is None:
        return [str(node.value)]
    out = render(node.left, node.op) + [node.op] + render(node.right, node.op, True)
    if parent and (PREC[node.op] < PREC[parent] or (right and PREC[node.op] == PREC[parent])):
        out = ["("] + out + [")"]
    return out


def count_ops(node: Node) -> int:
    return 0 if node.op is None else 1 + count_ops(node.left) + count_ops(node.right)


def evaluate_leftmost_ready(node: Node, p: int = P) -> bool:
    """Replace the in-order-first operator whose operands are both numbers; True if done."""
    if node.op is None:
        return False
    if evaluate_leftmost_ready(node.left, p):
        return True
    if node.left.op is None and node.right.op is None:
        node.value, node.op, node.left, node.right = evaluate(node, p), None, None, None
        return True
    return evaluate_leftmost_ready(node.right, p)


def arithmetic_chain(expression: list[str], p: int = P) -> list[list[str]]:
    """[e1, …, en] from e0 by the leftmost-handle rule."""
    tree, chain = parse(expression), []
    while tree.op is not None:
        assert evaluate_leftmost_ready(tree, p)
        chain.append(render(tree))
    return chain


def undo_steps(expression: list[str], p: int = P) -> set[tuple[str, ...]]:
    """Every expression one benchmark-order step can give: some ``a op b`` of two numbers (with
    the bracket pair around it, if it has one) replaced by its value, keeping the expression's
    value (and dividing by no zero). A superset of the steps the benchmark's reversed build
    history takes."""
    target = evaluate(parse(expression), p)
    candidates = set()
    for i in range(len(expression) - 2):
        a, op, b = expression[i : i + 3]
        if not (a.isdigit() and op in PREC and b.isdigit()):
            continue
        value = (
            evaluate(Node(op, left=Node(value=int(a)), right=Node(value=int(b))), p) if op != "/" or int(b) else None
        )
        if value is None:
            continue
        lo, hi = i, i + 3
        if lo > 0 and hi < len(expression) and expression[lo - 1] == "(" and expression[hi] == ")":
            lo, hi = lo - 1, hi + 1
        candidates.add(tuple(expression[:lo] + [str(value)] + expression[hi:]))
    out = set()
    for c in candidates:
        try:
            if evaluate(parse(list(c)), p) == target:
                out.add(c)
        except AssertionError:  # a divisor became 0
            pass
    return out


def arithmetic_target(prompt: list[str], p: int = P) -> list[str]:
    chain = arithmetic_chain(prompt[:-1], p)
    return list(itertools.chain.from_iterable(e + ["="] for e in chain))[:-1] + ["<eos>"]


# --- LIS -----------------------------------------------------------------------------------
def lis_dp(a: list[int]) -> list[int]:
    """dp[i] = longest strictly increasing subsequence ending at i: brute force over all
    subsequences for N <= 10, else the direct quadratic recurrence."""
    if len(a) <= 10:
        best = [1] * len(a)
        for mask in range(1, 1 << len(a)):
            idx = [i for i in range(len(a)) if mask >> i & 1]
            if all(a[x] < a[y] for x, y in zip(idx, idx[1:])):
                best[idx[-1]] = max(best[idx[-1]], len(idx))
        return best
    best = []
    for i, x in enumerate(a):
        best.append(1 + max((best[j] for j in range(i) if a[j] < x), default=0))
    return best


def lis_target(prompt: list[str]) -> list[str]:
    dp = lis_dp([int(t) for t in prompt[:-1]])
    return [str(d) for d in dp] + ["<sep>", str(max(dp)), "<eos>"]


# --- ED ------------------------------------------------------------------------------------
def edit_distance_table(a, b, ins=2, dele=2, rep=3, border="benchmark"):
    @functools.cache
    def d(i: int, j: int) -> int:
        if i == 0:
            return j if border == "benchmark" else j * ins
        if j == 0:
            return i if border == "benchmark" else i * dele
        return min(d(i - 1, j) + dele, d(i, j - 1) + ins, d(i - 1, j - 1) + (0 if a[i - 1] == b[j - 1] else rep))

    return [[d(i, j) for j in range(len(b) + 1)] for i in range(len(a) + 1)]


def split_ed_prompt(prompt):
    bar = prompt.index("|")
    return prompt[:bar], prompt[bar + 1 : -1]


def ed_target(prompt, local=False, **costs):
    a, b = split_ed_prompt(prompt)
    t = edit_distance_table(a, b, **costs)
    out = []
    for i in range(1, len(a) + 1):
        if local:
            out += a[i - 1 :] + ["|"]
            for j in range(1, len(b) + 1):
                out += [b[j - 1], str(t[i][j])]
        else:
            out += [str(t[i][j]) for j in range(1, len(b) + 1)]
        out.append(",")
    return out + ["<sep>", str(t[-1][-1]), "<eos>"]


def reference_target(name: str, prompt: list[str], **options) -> list[str]:
    if name == "arithmetic":
        return arithmetic_target(prompt, options.get("modulus", P))
    if name == "lis":
        return lis_target(prompt)
    costs = {
        k: v
        for k, v in (
            ("ins", options.get("insert_cost", 2)),
            ("dele", options.get("delete_cost", 2)),
            ("rep", options.get("replace_cost", 3)),
            ("border", options.get("border", "benchmark")),
        )
    }
    return ed_target(prompt, local=name == "ed_local", **costs)


# --- LIS inputs: the stream as first defined ---------------------------------------------------
def lis_inputs_recursive(rng, count: int, n: int, v: int):
    """LIS(n)'s [count, n] inputs as the generator first drew them: every row's draws in one
    pass over the whole batch (all v columns of each run's permutation kept), then the rows whose
    runs cannot fit v drawn again by a recursive call on that many rows. The library's loop, which
    computes only the rows it keeps, must give the same numbers from the same stream."""
    import numpy as np

    runs, total = rng.integers(1, 4, count), rng.integers(3, n + 1, count)
    r, r1 = rng.integers(1, total // 2 + 2), rng.integers(1, total // 3 + 2)
    r2 = rng.integers(1, (total - r1) // 2 + 2)
    sizes = np.stack(
        [
            np.select([runs == 1, runs == 2], [total, r], r1),
            np.select([runs == 1, runs == 2], [0, total - r], r2),
            np.where(runs == 3, total - r1 - r2, 0),
        ],
        axis=1,
    )
    redraw = (sizes > v).any(axis=1)
    sizes[redraw] = 0
    perm = np.argsort(rng.random((count, 3, v)), axis=-1)
    run_values = np.sort(np.where(np.arange(v) < sizes[..., None], perm, v), axis=-1)
    places = np.sort(np.where(np.arange(n) < total[:, None], np.argsort(rng.random((count, n)), axis=-1), n), axis=-1)
    seq = rng.integers(0, v, (count, n))
    for b in range(count):
        planted = [x for j in range(3) for x in run_values[b, j, : sizes[b, j]]]
        for k in range(total[b] if not redraw[b] else 0):
            seq[b, places[b, k]] = planted[k]
    if redraw.any():
        seq[redraw] = lis_inputs_recursive(rng, int(redraw.sum()), n, v) - (n + 1)
    return seq + n + 1
