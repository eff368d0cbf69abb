"""The pigeonhole lower bounds (Theorem 4.4 = B.5/B.6, Proposition 5.2 = C.1, Proposition 5.5 =
C.4) as numbers: the least hidden size D with which a model *could* tell apart every input of a
family whose members must produce different chains of thought.

The counting, shared by all four: a log-precision model stores each number in `bits` bits. If
everything the generated tokens can ever learn about the prompt fits in S(D) bits, the model
produces at most 2^{S(D)} different continuations; a regular DP (distinct inputs, distinct CoTs)
over a family of 2^{F} inputs therefore needs S(D) ≥ F. The bounds differ in S:

* linear attention (B.5, C.1, C.4): after the prompt (whose last token is the fixed separator)
  the continuation is a function of the recurrent states (Lemma A.8) — per layer and head the
  K × K matrix s and the K-vector z, K = D/H — so S(D) = depth·H·(K² + K)·bits. With F = Θ(L)
  this gives D = Ω(√(L/log L)) (B.5); for Arithmetic F = Θ(n) = Θ(√L), so D = Ω̃(L^{1/4}) (C.1);
  for an m-local DP with m = Θ(n), F = Θ(m) and D = Ω̃(√m) (C.4).
* sparse attention (B.6): a generated token sees the prompt only through the c summary tokens
  of each prompt block and the last B prompt tokens (eq. (6)); at every layer each holds D
  numbers, so S(D) = depth·T·D·bits with T those tokens' count. With B = Θ(√L), T = Θ(√L) and
  D = Ω(√L/log L).

The same count holds for any mixer of `jaxdp.models.mixers` (`min_dim_state`): after the prompt,
everything later is a function of the decode state, `state_size(P)` numbers per layer and head,
so S(D) = depth·H·state_size(P)·bits. For linear, retention and gated that is B.5 (K² + K); for
sparse it is B.6 with keys and values counted (2K per visible token and head); for standard it
grows with P and never binds (D constant); for window it is 2K·w. A window model has a harder
limit besides (`window_reach`): with depth M a token sees at most M·(w − 1) tokens back, so a DP
whose dependencies reach further (m > M·(w − 1), e.g. ED or LIS at L ≫ M·w) cannot be solved at
any D, while an m-local one with w > m can at constant D (the argument of Proposition 5.4).
"""

from __future__ import annotations

import math

import numpy as np


def linear_state_bits(dim: int, depth: int, heads: int, bits: int) -> int:
    """depth·H·(K² + K)·bits, K = D/H: the linear-attention states after the prompt."""
    K = dim // heads
    return depth * heads * (K * K + K) * bits


def min_dim_linear(family_bits: float, depth: int, heads: int, bits: int) -> int:
    """The least D (a multiple of `heads`) with `linear_state_bits` ≥ `family_bits`."""
    _positive(depth=depth, heads=heads, bits=bits)
    need = family_bits / (depth * heads * bits)  # K² + K ≥ need
    K = max(1, math.ceil((-1.0 + math.sqrt(1.0 + 4.0 * need)) / 2.0 - 1e-12))
    while K * K + K < need:
        K += 1
    return heads * K


def sparse_visible_tokens(prompt_len: int, block_size: int, local_blocks: int = 1, global_tokens: int = 1) -> int:
    """How many prompt tokens a token after the prompt can attend (eq. (6)): the last c of every
    complete prompt block, and the last k·B prompt tokens; counted once."""
    P, B = prompt_len, block_size
    q = np.arange(P)
    summary = (q % B) >= B - global_tokens
    recent = q >= P - local_blocks * B
    return int((summary | recent).sum())


def min_dim_sparse(family_bits: float, depth: int, visible: int, bits: int) -> int:
    """The least D with depth·visible·D·bits ≥ `family_bits` (Theorem B.6's count)."""
    _positive(depth=depth, visible=visible, bits=bits)
    return max(1, math.ceil(family_bits / (depth * visible * bits) - 1e-12))


def b5_linear(L: int, depth: int, heads: int, bits: int, family_bits: float | None = None) -> int:
    """Theorem B.5: least D of a linear Transformer for a regular DP with output length L;
    the family defaults to 2^L inputs (L = Θ(n))."""
    return min_dim_linear(L if family_bits is None else family_bits, depth, heads, bits)


def b6_sparse(L: int, prompt_len: int, block_size: int, depth: int, bits: int, family_bits: float | None = None) -> int:
    """Theorem B.6: least D of a sparse Transformer (block size B, one summary token per block)."""
    visible = sparse_visible_tokens(prompt_len, block_size)
    return min_dim_sparse(L if family_bits is None else family_bits, depth, visible, bits)


def arithmetic_family_bits(n: int, p: int = 11) -> float:
    """log₂ of the number of distinct first CoT steps of Arithmetic(n, p) over expressions
    a₁ op₁ a₂ … op_n a_{n+1} with op ∈ {+, −} (one precedence level, so the leftmost pair is the
    handle): the first step is (a₁ op₁ a₂) op₂ a₃ … with p values for the evaluated pair, p
    values and 2 operators for each of the other n − 1 places: p^n·2^{n−1}."""
    return n * math.log2(p) + (n - 1)


def c1_arithmetic_linear(n: int, depth: int, heads: int, bits: int, p: int = 11) -> int:
    """Proposition 5.2 / Theorem C.1: least D of a linear Transformer for Arithmetic(n, p)."""
    return min_dim_linear(arithmetic_family_bits(n, p), depth, heads, bits)


def c4_local_linear(m: int, depth: int, heads: int, bits: int, family_bits: float | None = None) -> int:
    """Proposition 5.5 / Theorem C.4: least D of a linear Transformer for an m-local regular DP
    with m = Θ(n); the family defaults to 2^m inputs."""
    return min_dim_linear(m if family_bits is None else family_bits, depth, heads, bits)


def state_bits(config, prompt_len: int, bits: int) -> int:
    """depth·H·state_size(prompt_len)·bits: what a model of `config` carries past the prompt."""
    return config.state_numbers(prompt_len) * bits


def min_dim_state(
    mixer: str, family_bits: float, prompt_len: int, max_len: int, depth: int, heads: int, bits: int, **options
) -> int:
    """The least D (a multiple of `heads`) at which a `mixer` model's decode state after the
    prompt can tell 2^family_bits inputs apart (module docstring); options as for ModelConfig."""
    from jaxdp.models import ModelConfig

    _positive(depth=depth, heads=heads, bits=bits)

    def enough(dim: int) -> bool:
        cfg = ModelConfig(
            mixer=mixer, dim=dim, num_heads=heads, num_layers=depth, max_len=max_len, vocab_size=2, options=options
        )
        return state_bits(cfg, prompt_len, bits) >= family_bits

    high = heads
    while not enough(high):
        high *= 2
    low = max(heads, high // 2)
    while low < high:  # the least multiple of `heads` in [low, high] that is enough
        mid = (low + high) // 2 // heads * heads
        if mid < low:
            mid = low
        if enough(mid):
            high = mid
        else:
            low = mid + heads
    return high


def window_reach(depth: int, window: int) -> int:
    """How far back a depth-M model of windows of w tokens can see: M·(w − 1) positions."""
    return depth * (window - 1)


def ed_family_bits(N: int, M: int) -> float:
    """log₂ of a family of ED inputs with pairwise distinct DP tables: a ∈ {x, y}^N and
    b ∈ {x, y}^M with a₁ = x (fixing a₁ removes the letter swap); `tests` check distinctness
    exhaustively at small sizes."""
    return float(N + M - 1)


def _positive(**values) -> None:
    for name, v in values.items():
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"bounds: {name} must be a positive integer, got {v!r}")
