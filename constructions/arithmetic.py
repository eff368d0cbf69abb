"""Proposition 5.1's step rule for Arithmetic, written as the five layers a construction computes.

The paper's upper bound for Arithmetic (Proposition 5.1, after Feng et al. 2023, Theorem 3.3) is
a transformer with a constant hidden size that writes the chain of thought of
`jaxdp.tasks.arithmetic` (the leftmost handle, a bracket pair around a single number dropped in
the same step); with sparse attention, B = Θ(√L), it costs O(L√L). This module is that
construction's first stage: what each layer's heads read and what its MLP computes, per position
t of the sequence ``e0 = e1 = … = en <eos>``, as a program over tokens (`step_rule`).
`constructions.arithmetic_model` writes the weights that realise it.

Each head reads one position, chosen by a score that a softmax head can carry with a constant
number of features (position j, j², a flag, a block id and its square):

1. `e_last`: the latest '=' at or before t (score M·[x_j is '='] + j; position 0 stands for
   "none yet", value −1), and the four tokens t−1 … t−4 (COPY, score −(t−k−j)², Lemma A.11).
   The MLP judges the operator at t−2: ``a op b`` of two numbers is *ready* when, with the
   neighbours ``left`` (t−4) and ``right`` (t) and '=' read as no neighbour, op is * or / and
   left is neither, or op is + or − and left is '(' or none and right is not * or /. It writes
   ready, the value a op b (mod p, a table of 4p² entries: constant in n) and bracket
   (left '(' and right ')').
2. `pe`: e_last of position t−1 (COPY): at an '=' it is the '=' before it.
3. `e_prev`: pe of position e_last(t) (COPY at a position the query holds): the '=' before the
   *source block*, the one the next token is written from: (e_prev, e_last(t)).
4. `handle`: the first ready position of the source block: keys j with pe(j) = e_prev(t) (a
   block id, matched by −(pe_j − e_prev)², which also keeps out every global token of the
   sparse pattern) and ready, the smallest j first (score −j). It reads value and bracket there.
   The MLP turns the handle into the next token's rule: the source offset of the next token
   (t − e_last), below the handle's first token: copy; at it: the value; above it: copy from
   2 (4 with brackets) further on; at the new block's length: '=' (<eos> after a single number).
5. `copy`: the token at that position (COPY); the MLP picks the copied token, the value, '=' or
   <eos>.

Every head reads at most `reach` positions back: inside the source and the current block, so
at most 2(4n − 1) + 1 tokens (`reach_bound`). A sparse mixer with B = 2^⌊log₂ √L⌋ (eq. (6)) and
k = `local_blocks_needed` local blocks sees all of it, and k stays bounded as n grows
(`tests/constructions/test_arithmetic.py`). A choice the paper leaves open: the block id is the
position of the '=' before a block (an integer below L), not a count of blocks.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from jaxdp.models.masks import default_block_size
from jaxdp.tasks.arithmetic import OPS

TIGHT = ("*", "/")
NONE = -1  # "no '=' yet": the value the e_last head reads at position 0


@dataclasses.dataclass(frozen=True)
class Handle:
    """Layer 1's MLP at one position: the operator two tokens back, judged."""

    ready: bool
    value: int
    bracket: bool


@dataclasses.dataclass(frozen=True)
class Position:
    """What the layers computed at one position, and the positions their heads read."""

    e_last: int
    pe: int
    e_prev: int
    handle_at: int | None
    target: int | None
    next_token: str
    reads: tuple[int, ...]


def _number(token: str | None) -> bool:
    return token is not None and token.isdigit()


def _neighbour(token: str | None) -> str | None:
    return None if token == "=" else token


def judge(left, a, op, b, right, modulus: int) -> Handle:
    """Layer 1's MLP: is ``a op b`` (with its neighbours) the kind of handle the step rule
    evaluates first, its value mod p, and whether brackets close around it."""
    if op not in OPS or not (_number(a) and _number(b)):
        return Handle(False, 0, False)
    left, right = _neighbour(left), _neighbour(right)
    if op in TIGHT:
        ready = left not in TIGHT
    else:
        ready = left in (None, "(") and right not in TIGHT
    return Handle(ready, evaluate(int(a), op, int(b), modulus), left == "(" and right == ")")


def evaluate(a: int, op: str, b: int, modulus: int) -> int:
    """The 4p² table layer 1's MLP holds (division is by the inverse; b = 0 never reaches a
    ready '/' in a well-formed expression, and gives 0 here)."""
    if op == "+":
        return (a + b) % modulus
    if op == "-":
        return (a - b) % modulus
    if op == "*":
        return a * b % modulus
    return a * pow(b, modulus - 2, modulus) % modulus if b % modulus else 0


def _layer1(tokens: Sequence[str], modulus: int) -> tuple[list[int], list[Handle]]:
    e_last, handles, last = [], [], NONE
    for t, token in enumerate(tokens):
        last = t if token == "=" else last
        e_last.append(last)
        back = [tokens[t - k] if t - k >= 0 else None for k in (4, 3, 2, 1)]
        handles.append(judge(*back, token, modulus))
    return e_last, handles


def _next_rule(t, e_last, e_prev, handle_at, handle: Handle) -> tuple[int | None, str | None]:
    """Layer 4's MLP: the position the next token is copied from, or the token itself."""
    start, offset = e_prev + 1, t - e_last
    shift = 4 if handle.bracket else 2
    new_length = (e_last - start) - shift
    if offset == new_length:
        return None, "<eos>" if new_length == 1 else "="
    first = handle_at - 3 - handle.bracket  # the handle's first token: a, or its '('
    if start + offset < first:
        return start + offset, None
    if start + offset == first:
        return None, str(handle.value)
    return start + offset + shift, None


def step_rule(tokens: Sequence[str], modulus: int, first: int) -> list[Position]:
    """The five layers at every position t from `first` (the prompt's '=') to the one before
    <eos>: what each computes and reads, and the next token it writes."""
    e_last, handles = _layer1(tokens, modulus)
    pe = [NONE] + e_last[:-1]
    out = []
    for t in range(first, len(tokens) - 1):
        e_prev = pe[e_last[t]]  # the source block is (e_prev, e_last[t]); its handles sit up to e_last[t]
        handle_at = min(j for j in range(e_prev + 1, t + 1) if pe[j] == e_prev and handles[j].ready)
        target, token = _next_rule(t, e_last[t], e_prev, handle_at, handles[handle_at])
        reads = (e_last[t], *(max(t - k, 0) for k in range(1, 5)), e_last[t], handle_at)
        reads += (target,) if target is not None else ()
        out.append(Position(e_last[t], pe[t], e_prev, handle_at, target, token or tokens[target], reads))
    return out


def reach_bound(n: int) -> int:
    """The farthest back any head reads: the source block (at most 4n − 1 tokens) and its '=',
    then the current block up to t."""
    return 2 * (4 * n - 1) + 1


def local_blocks_needed(n: int, max_len: int) -> int:
    """k such that eq. (6)'s local window kB, with the paper's B for `max_len`, covers
    `reach_bound(n)` (a query sees keys q with p − q < kB)."""
    return math.ceil((reach_bound(n) + 1) / default_block_size(max_len))
