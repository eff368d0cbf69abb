"""Analytic FLOPs of the decoder, itemised per component (nanoGPT style); one FLOP is one
multiply or one add, so a multiply-add counts 2.

Two accountings:

* **full** (`forward_flops`): what the configured kernel and form actually compute for one
  sequence, including the attention scores and the mixing of values (for the standard and masked
  forms the whole L x L square, masked entries included) and an approximate count of elementwise
  work (norms, softmax, GeLU, feature map, residual adds). Cross-checked against XLA's
  `cost_analysis()` in the tests.
* **paper** (`paper_flops`): 2 · N · L with N the number of parameters, the "2N per token" rule.
  The paper's Table 2 (docs/paper.md §4) matches this within 2% (see docs/models.md), i.e. it leaves out the
  attention mixing, which is why its linear and sparse figures are plain multiples of the
  standard model's.

>>> from jaxdp.models import ModelConfig
>>> cfg = ModelConfig(mixer="standard", dim=128, max_len=505, vocab_size=20)
>>> round(paper_flops(cfg, 505) / 1e9, 3)  # Table 2, standard, L = 505: 0.605
0.606
"""

from __future__ import annotations

import dataclasses

from jaxdp.models.config import ModelConfig
from jaxdp.models.conv import conv_flops

# Approximate elementwise FLOPs per element (close to what XLA reports on CPU); each mixer
# counts its own (`jaxdp.models.mixers`).
LAYERNORM = 7
GELU = 8


def param_count(config: ModelConfig) -> int:
    """Trainable parameters: embedding, M blocks (4 DxD maps and the FFN, with biases, two
    LayerNorms and each layer's mixer's own, `Mixer.param_count`), the final LayerNorm and the
    head. The fixed sinusoids are not parameters."""
    D, F, V = config.dim, config.hidden_dim, config.vocab_size
    norms = 2 * D if config.norm == "pre_ln" else 0
    conv = 3 * D * (config.short_conv + 1) if config.short_conv else 0  # taps and a bias per channel
    block = 4 * (D * D + D) + (D * F + F) + (F * D + D) + 2 * norms + conv
    mixers = sum(layer.mixer_impl.param_count(layer) for layer in config.layers())
    return V * D + norms + config.num_layers * block + mixers + norms + (D * V + V)


def paper_flops(config: ModelConfig, seq_len: int) -> float:
    """The paper's accounting: 2 · (parameters) · L."""
    return 2.0 * param_count(config) * seq_len


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
    att = _mixer_flops(config, L)
    ln = LAYERNORM * L * D if config.norm == "pre_ln" else 0
    gelu = GELU * L * F
    items = {
        "embedding": L * D + ln,  # lookup (free) + positions + LayerNorm
        "qkv": M * (2.0 * L * D * 3 * D + 3 * L * D),
        "attention_scores": att["scores"],
        "attention_mix": att["mix"],
        "attention_out": M * (2.0 * L * D * D + L * D),
        "ffn": M * (2.0 * L * D * F + L * F + 2.0 * L * F * D + L * D),
        "head": 2.0 * L * D * V + L * V,
        "attention_elementwise": att["elementwise"],  # softmax / feature map, normalisers
        "attention_aux": att.get("aux", 0.0),  # a mixer's own inputs (gated: the gate projection)
        "elementwise": M * (gelu + 2 * ln + 2 * L * D) + ln,  # GeLU, norms, residual adds
        "short_conv": M * conv_flops(config, L),
    }
    return FlopsBreakdown(items, paper_flops(config, L))


def _mixer_flops(config: ModelConfig, L: int) -> dict[str, float]:
    """The mixers' items of `Mixer.flops`, summed over the layers (a hybrid's differ)."""
    out: dict[str, float] = {}
    for layer in config.layers():
        for key, value in layer.mixer_impl.flops(layer, L).items():
            out[key] = out.get(key, 0.0) + value
    return out


def forward_flops(config: ModelConfig, seq_len: int) -> float:
    """Full forward FLOPs of one sequence (see `breakdown` for the items)."""
    return breakdown(config, seq_len).total


def train_flops(config: ModelConfig, seq_len: int) -> float:
    """Forward and backward of one sequence: the usual 3 × forward."""
    return 3.0 * forward_flops(config, seq_len)


def decode_flops(config: ModelConfig, prompt_len: int, total_len: int) -> float:
    """FLOPs to generate a whole CoT: a prefill forward over the prompt, then one decode step per
    further position up to `total_len`. A step does the dense work of one token plus the mixer's
    step (`Mixer.step_flops`): attention over the p+1 cached keys (standard), over |I_p|
    (sparse), over min(p+1, w) (window), or the (S, z) update and read-out (linear and the
    decayed ones)."""
    D, F, V, M = config.dim, config.hidden_dim, config.vocab_size, config.num_layers
    per_token_dense = M * (2.0 * D * 4 * D + 4.0 * D * F) + 2.0 * D * V
    steps = range(prompt_len, total_len)
    mixing = sum(layer.mixer_impl.step_flops(layer, pos) for pos in steps for layer in config.layers())
    return forward_flops(config, prompt_len) + len(steps) * (per_token_dense + M * conv_flops(config, 1)) + mixing
