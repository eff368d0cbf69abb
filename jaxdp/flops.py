"""Analytic FLOPs of the decoder, itemised per component (nanoGPT style); one FLOP is one
multiply or one add, so a multiply-add counts 2.

Two accountings:

* **full** (`forward_flops`): what the configured kernel and form actually compute for one
  sequence, including the attention scores and the mixing of values (for the standard and masked
  forms the whole L x L square, masked entries included) and an approximate count of elementwise
  work (norms, softmax, GeLU, feature map, residual adds). Cross-checked against XLA's
  `cost_analysis()` in the tests.
* **paper** (`paper_flops`): 2 · N · L with N the number of parameters, the "2N per token" rule.
  The paper's Table 2 (SPEC §4) matches this within 2% (see README), i.e. it leaves out the
  attention mixing, which is why its linear and sparse figures are plain multiples of the
  standard model's.

>>> from jaxdp.models import ModelConfig
>>> cfg = ModelConfig(attention="standard", dim=128, max_len=505, vocab_size=20)
>>> round(paper_flops(cfg, 505) / 1e9, 3)  # Table 2, standard, L = 505: 0.605
0.606
"""

from __future__ import annotations

import dataclasses

from jaxdp.models.config import ModelConfig
from jaxdp.models.masks import sparse_mask
from jaxdp.tasks import PAPER_MAX_LENGTHS

# Approximate elementwise FLOPs per element (close to what XLA reports on CPU).
LAYERNORM = 7
SOFTMAX = 4
GELU = 8
FEATURE_MAP = 3


def _ceil_to(n: int, m: int) -> int:
    return -(-n // m) * m


#: The paper's Table 2 (SPEC §4): forward GFLOPs per sequence on Arithmetic at the paper's
#: lengths L = 87, 221, 355, 505, with the hidden size D that 2·N·L implies for each cell (see
#: README "FLOPs").
PAPER_TABLE2_L = PAPER_MAX_LENGTHS["arithmetic"]
PAPER_TABLE2 = {
    "standard": ((0.027, 0.266, 0.426, 0.605), (64, 128, 128, 128)),
    "linear": ((0.422, 4.220, 6.756, 9.584), (256, 512, 512, 512)),
    "sparse": ((0.106, 1.055, 1.690, 2.399), (128, 256, 256, 256)),
}


def paper_table2_markdown(vocab_size: int = 20) -> str:
    """The paper's Table 2 next to `paper_flops` (2·N·L) and the full count, at the implied D
    (3 layers, 4 heads; 20 tokens is the arithmetic vocabulary)."""
    rows = ["| model | L | D | paper GFLOPs | 2·N·L | full count | full / paper |", "|---|---|---|---|---|---|---|"]
    for model, (figures, dims) in PAPER_TABLE2.items():
        for L, D, figure in zip(PAPER_TABLE2_L, dims, figures):
            cfg = ModelConfig(attention=model, dim=D, max_len=L, vocab_size=vocab_size)
            ours, full = paper_flops(cfg, L) / 1e9, forward_flops(cfg, L) / 1e9
            rows.append(f"| {model} | {L} | {D} | {figure:.3f} | {ours:.3f} ({ours / figure - 1:+.1%}) "
                        f"| {full:.3f} | {full / figure:.2f}× |")  # fmt: skip
    return "\n".join(rows)


def param_count(config: ModelConfig) -> int:
    """Trainable parameters: embedding, M blocks (4 DxD maps and the FFN, with biases, and two
    LayerNorms), the final LayerNorm and the head. The fixed sinusoids are not parameters."""
    D, F, V, M = config.dim, config.hidden_dim, config.vocab_size, config.num_layers
    norms = 2 * D if config.norm == "pre_ln" else 0
    block = 4 * (D * D + D) + (D * F + F) + (F * D + D) + 2 * norms
    return V * D + norms + M * block + norms + (D * V + V)


def paper_flops(config: ModelConfig, seq_len: int) -> float:
    """The paper's accounting: 2 · (parameters) · L."""
    return 2.0 * param_count(config) * seq_len


def _attention_items(config: ModelConfig, L: int) -> dict[str, float]:
    """Scores, mixing and their elementwise work for one layer and one sequence of length L."""
    D, H, K = config.dim, config.num_heads, config.head_dim
    kind = config.attention
    if kind == "linear":
        fmap = 2 * L * D * FEATURE_MAP
        if config.linear_form == "quadratic":
            return {"scores": 2.0 * L * L * D, "mix": 2.0 * L * L * D,
                    "elementwise": fmap + 2.0 * H * L * L + L * D}  # mask, row sums; divide  # fmt: skip
        if config.linear_form == "scan":
            # per position: S += phi(k) v^T and z += phi(k); read phi(q)^T S and phi(q)^T z
            return {"scores": 2.0 * L * D, "mix": 4.0 * L * D * K + 2.0 * L * D,
                    "elementwise": fmap + 2.0 * L * D}  # fmt: skip
        C = config.chunk_size
        Lp = _ceil_to(L, C)
        intra = 2.0 * Lp * C * D
        state = 2.0 * Lp * D * K + 2.0 * Lp * D  # chunk sums of phi(k) v^T and phi(k)
        inter = 2.0 * Lp * D * K + 2.0 * Lp * D  # phi(q) against the state entering the chunk
        return {"scores": intra, "mix": intra + state + inter,
                "elementwise": fmap + 2.0 * H * Lp * C + 2.0 * Lp * D}  # fmt: skip
    if kind == "sparse" and config.sparse_form == "blocked":
        B, k, c = config.block_size, config.local_blocks, config.global_tokens
        nb = -(-L // B)
        keys = (k + 1) * B + (nb * c if c and nb >= k + 2 else 0)
        n_scores = nb * B * keys * H
    else:  # standard and masked sparse compute the whole square
        n_scores = L * L * H
    return {"scores": 2.0 * n_scores * K, "mix": 2.0 * n_scores * K,
            "elementwise": SOFTMAX * n_scores + L * D}  # softmax; query scaling  # fmt: skip


@dataclasses.dataclass(frozen=True)
class FlopsBreakdown:
    """Forward FLOPs of one sequence, per component (all layers summed)."""

    items: dict[str, float]
    paper: float  # 2 · N · L

    @property
    def total(self) -> float:
        return sum(self.items.values())

    @property
    def dense(self) -> float:
        """Products with weight matrices (QKV, output, FFN, head)."""
        return sum(self.items[k] for k in ("qkv", "attention_out", "ffn", "head"))

    @property
    def attention(self) -> float:
        """Scores and mixing of values (what the paper's accounting leaves out)."""
        return self.items["attention_scores"] + self.items["attention_mix"]


def breakdown(config: ModelConfig, seq_len: int) -> FlopsBreakdown:
    """Itemised forward FLOPs of one sequence of length `seq_len` (batch 1)."""
    L, D, F, V, M = seq_len, config.dim, config.hidden_dim, config.vocab_size, config.num_layers
    att = _attention_items(config, L)
    ln = LAYERNORM * L * D if config.norm == "pre_ln" else 0
    gelu = GELU * L * F
    items = {
        "embedding": L * D + ln,  # lookup (free) + positions + LayerNorm
        "qkv": M * (2.0 * L * D * 3 * D + 3 * L * D),
        "attention_scores": M * att["scores"],
        "attention_mix": M * att["mix"],
        "attention_out": M * (2.0 * L * D * D + L * D),
        "ffn": M * (2.0 * L * D * F + L * F + 2.0 * L * F * D + L * D),
        "head": 2.0 * L * D * V + L * V,
        "attention_elementwise": M * att["elementwise"],  # softmax / feature map, normalisers
        "elementwise": M * (gelu + 2 * ln + 2 * L * D) + ln,  # GeLU, norms, residual adds
    }
    return FlopsBreakdown(items, paper_flops(config, L))


def forward_flops(config: ModelConfig, seq_len: int) -> float:
    """Full forward FLOPs of one sequence (see `breakdown` for the items)."""
    return breakdown(config, seq_len).total


def train_flops(config: ModelConfig, seq_len: int) -> float:
    """Forward and backward of one sequence: the usual 3 × forward."""
    return 3.0 * forward_flops(config, seq_len)


def decode_flops(config: ModelConfig, prompt_len: int, total_len: int) -> float:
    """FLOPs to generate a whole CoT: a prefill forward over the prompt, then one decode step per
    further position up to `total_len`. A step does the dense work of one token plus attention
    over the keys the state holds for it: p+1 (standard), |I_p| (sparse), none but the (S, z)
    update and read-out (linear)."""
    D, F, V, M, K = config.dim, config.hidden_dim, config.vocab_size, config.num_layers, config.head_dim
    per_token_dense = M * (2.0 * D * 4 * D + 4.0 * D * F) + 2.0 * D * V
    steps = range(prompt_len, total_len)
    if config.attention == "linear":
        keys = 0
        attention = len(steps) * (4.0 * D * K + 4.0 * D)
    elif config.attention == "sparse":
        B, k, c = config.block_size, config.local_blocks, config.global_tokens
        keys = int(sparse_mask(total_len, B, k, c)[prompt_len:].sum())
        attention = 4.0 * keys * D
    else:
        attention = 4.0 * sum(pos + 1 for pos in steps) * D
    return forward_flops(config, prompt_len) + len(steps) * per_token_dense + M * attention
