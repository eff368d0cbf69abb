"""COPY by position: one softmax head per fetch (Lemma A.11) scores −λ(t − j)² from the target
t, t² and the positional (k, k²), so it copies the token at position t. Constant D.

* ``standard`` (Theorem 4.1, after Feng et al.): under the causal mask.
* ``local`` (Proposition 5.4 / C.3): under the sparse mask of eq. (6) with B = m, the spec's
  locality: everything a token needs lies in its local window.
* ``window``: under a sliding window of w = m tokens (`jaxdp.models.mixers.window`): the same
  argument as Proposition 5.4's with no summary tokens, so an m-local DP needs constant D.
"""

from __future__ import annotations

import numpy as np

from constructions.attention import copy_head
from constructions.compilers.base import Compiler, Stage
from constructions.dp import DPSpec
from constructions.residual import Layout


class Standard(Compiler):
    name, mixer, squares = "standard", "standard", True

    def positional_spaces(self, spec):
        return [("k2", 1)]

    def scratch_spaces(self, spec):
        return [(f"t2_{f.name}", 1) for f in spec.fetches]

    def positional(self, spec, k):
        return dict(k2=k * k)

    def fetch_stages(self, spec: DPSpec, layout: Layout, eps: float) -> list[Stage]:
        """One block of COPY heads and no FFN (`compile_dp` fuses it with the next block)."""
        D, K, L = layout.dim, self.head_size(spec), spec.length
        heads = {}
        for h, f in enumerate(spec.fetches):
            Q, Kx, V = np.zeros((3, D)), np.zeros((3, D)), np.zeros((len(f.fields), D))
            Q[0, layout.indices(f"t_{f.name}")], Q[1, layout.indices(f"t2_{f.name}")] = 2.0, -1.0
            Kx[0, layout.indices("k")], Kx[2, layout.indices("k2")] = 1.0, 1.0
            V[np.arange(len(f.fields)), layout.indices(list(f.fields))] = 1.0
            heads[h] = copy_head(
                layout,
                Q,
                Kx,
                V,
                np.zeros(D),
                f"got_{f.name}",
                rho=1e-6,
                delta=1.0,
                rating_range=1.0,
                M_v=float(spec.value_bound),
                n=L,
                eps=eps,
                q_bias=[0.0, 0.0, -1.0],
                k_bias=[0.0, 1.0, 0.0],
                head_size=K,
            )[0]
        return [Stage(heads)]


class Local(Standard):
    """The COPY heads of `Standard` under eq. (6) with block size m (one local block, one
    summary token per block)."""

    name, mixer, cite = "local", "sparse", "Proposition 5.4"

    def check(self, spec):
        if spec.m >= spec.length - 1:
            raise ValueError(
                f"compile: compiler {self.name!r} ({self.cite}) needs an m-local spec; {spec.name} "
                f"has m = {spec.m} ≈ L. Use local=True."
            )

    def period(self, spec):
        return spec.m

    def options(self, spec, num_heads, eps):
        return dict(block_size=spec.m, local_blocks=1, global_tokens=1)


class Window(Local):
    """Sliding window: the COPY heads of `Standard` over the last w = m tokens."""

    name, mixer, cite = "window", "window", "a window of w = m tokens"

    def options(self, spec, num_heads, eps):
        return dict(window=spec.m)
