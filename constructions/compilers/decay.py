"""Lemma A.9's AGG under a decay: ``gated`` and ``retention`` run `linear`'s stages with every
decay held within δ of 1 (docs/proofs.md, "Whole models that solve a DP").

With log-gates c, both mixers weight token j at query i by e^{c_i − c_j} ∈ [γ^L, 1] besides
φ(q_i)·φ(k_j), and normalise by the same sum (`jaxdp.models.mixers.decay`). If every gate is
γ ≥ 1 − δ/L, all weights lie in [1 − δ, 1], so the block average AGG returns moves by at most
2·M·δ/(1 − δ) and the leak of other blocks grows by at most 1/(1 − δ). We take
δ = ε/(16·M·W): after the count's multiplication by at most W the error stays within ε/8.

* ``gated``: gate weights 0 and bias β = ln(γ/(1 − γ)), so σ(β) = γ for every token; β grows
  like ln(L·M·W/ε), so the parameters stay O(log(L/ε)), as Lemma A.9's.
* ``retention``: RetNet's decays are a choice (`gammas`); we set every head's γ the same way.
  With RetNet's own schedule γ_h = 1 − 2^{−5−h}, a target L tokens back is weighted
  e^{−L·2^{−5−h}} against recent non-matching tokens, so μ must grow linearly in L and the
  weights need e^{Θ(L)} of range: beyond the log-precision setting of the paper (§3), and not
  built here.
"""

from __future__ import annotations

import math

import numpy as np

from constructions.compilers.linear import Linear
from constructions.dp import DPSpec


class NearOne(Linear):
    """`Linear` under a mixer whose decays the construction holds at γ = 1 − δ/L."""

    def gamma(self, spec: DPSpec, eps: float) -> float:
        """The decay γ = 1 − δ/L, δ = ε/(16·M·W): every product of gates over L tokens ≥ 1 − δ."""
        delta = eps / (16.0 * spec.value_bound * self.period(spec))
        return 1.0 - delta / spec.length


class Gated(NearOne):
    """`Linear` under gated linear attention, every gate σ(β) = γ ≈ 1 (gate weights 0)."""

    name, mixer = "gated", "gated"

    def mixer_params(self, spec, dim, num_heads, eps):
        gamma = self.gamma(spec, eps)
        beta = math.log(gamma / (1.0 - gamma))
        return {
            "attn.mixer_params.gate.kernel": np.zeros((dim, num_heads)),
            "attn.mixer_params.gate.bias": np.full(num_heads, beta),
        }


class Retention(NearOne):
    """`Linear` under retention, every head's decay γ ≈ 1 (`gammas`, set by the compiler)."""

    name, mixer = "retention", "retention"

    def options(self, spec, num_heads, eps):
        return dict(gammas=(self.gamma(spec, eps),) * num_heads)
