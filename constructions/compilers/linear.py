"""``linear`` (Theorem B.3 via Lemma A.9): W = ⌈√L⌉. One AGG head per fetch averages the
block ⌈t/W⌉ (each token's fields in slot k mod W), an FFN picks t's slot and multiplies by the
number of the block's tokens seen so far. D = O(W) = O(√L)."""

from __future__ import annotations

import math

import numpy as np

from constructions.attention import agg_head, agg_scale
from constructions.compilers.base import ETA, Compiler, Stage, gelu, slot_rows, spread_fields, spread_part
from constructions.dp import DPSpec
from constructions.mlp import ceil_div_relu, relu_to_gelu, select_slot
from constructions.program import Net
from constructions.residual import Layout


class Linear(Compiler):
    name, mixer = "linear", "linear"

    def period(self, spec):
        return math.isqrt(spec.length - 1) + 1

    def head_size(self, spec):
        return self.period(spec) * max(len(f.fields) for f in spec.fetches)

    def positional_spaces(self, spec):
        return [("rmod", 1), ("khot", self.period(spec))]

    def scratch_spaces(self, spec):
        W = self.period(spec)
        spaces = [("slots", W * len(spread_fields(spec)))]
        for f in spec.fetches:
            n, d = f.name, len(f.fields)
            spaces += [
                (f"b_{n}", 1),
                (f"bm1_{n}", 1),
                (f"pr_{n}", 1),
                (f"qhot_{n}", W),
                (f"cnt_{n}", 1),
                (f"agg_{n}", W * d),
                (f"sel_{n}", d),
            ]
        return spaces

    def positional(self, spec, k):
        W = self.period(spec)
        return dict(rmod=k % W, khot=np.eye(W)[(np.ceil(k[:, 0] / W) - 1).astype(int)])

    def first_parts(self, spec, layout, eps):
        return [spread_part(spec, self.period(spec), eps)]

    def fetch_stages(self, spec: DPSpec, layout: Layout, eps: float) -> list[Stage]:
        """⌈t/W⌉ and t's place; the one-hot of ⌈t/W⌉ and the block's count; AGG and the slot
        selection; the product with the count."""
        W, R, Mv = self.period(spec), spec.fetches, float(spec.value_bound)
        blocks = [
            (
                relu_to_gelu(ceil_div_relu(W, W), ETA, margin=0.5),
                [f"t_{f.name}"],
                [f"b_{f.name}", f"bm1_{f.name}", f"pr_{f.name}"],
            )
            for f in R
        ]
        eps_agg = eps / (4.0 * W)
        mu = agg_scale(Mv, W, self.head_size(spec), eps_agg)
        heads = {
            h: agg_head(
                layout,
                mu,
                self.head_size(spec),
                query=f"qhot_{f.name}",
                key="khot",
                values=slot_rows(layout, spec, "slots", f, W),
                out=f"agg_{f.name}",
            )
            for h, f in enumerate(R)
        }
        select = [
            (
                relu_to_gelu(select_slot(len(f.fields), W, Mv), eps_agg, margin=Mv),
                [f"agg_{f.name}", f"pr_{f.name}"],
                [f"sel_{f.name}"],
            )
            for f in R
        ]
        return [
            Stage({}, blocks),
            Stage({}, [gelu(self._query_and_count(spec, layout))]),
            Stage(heads, select),
            Stage({}, [gelu(self._times_count(spec, layout))]),
        ]

    def _query_and_count(self, spec: DPSpec, layout: Layout) -> Net:
        """Per fetch: qhot = the one-hot of b = ⌈t/W⌉, cnt = min(W, k − W(b − 1)), the tokens of
        block b up to k."""
        W, R = self.period(spec), spec.fetches
        net = Net(
            layout,
            ["k"] + [n for f in R for n in (f"b_{f.name}", f"bm1_{f.name}")],
            [n for f in R for n in (f"qhot_{f.name}", f"cnt_{f.name}")],
        )
        for f in R:
            b = f"b_{f.name}"
            for s in range(1, W + 1):  # [b = s] at integers: a hat of width 1
                net.relu((f"qhot_{f.name}", s - 1), {b: 1.0}, 1.0 - s)
                net.relu((f"qhot_{f.name}", s - 1), {b: 1.0}, -float(s), coef=-2.0)
                net.relu((f"qhot_{f.name}", s - 1), {b: 1.0}, -1.0 - s)
            a = {"k": 1.0, f"bm1_{f.name}": -float(W)}
            net.affine(f"cnt_{f.name}", a)
            net.relu(f"cnt_{f.name}", a, -float(W), coef=-1.0)
        return net

    def _times_count(self, spec: DPSpec, layout: Layout) -> Net:
        """got = sel · cnt = Σ_c sel·[cnt ≥ c]: the block's mean times its count."""
        W, R, Mv = self.period(spec), spec.fetches, float(spec.value_bound)
        net = Net(layout, [n for f in R for n in (f"sel_{f.name}", f"cnt_{f.name}")], [f"got_{f.name}" for f in R])
        for f in R:
            for t in range(len(f.fields)):
                for c in range(1, W + 1):
                    net.gate(
                        (f"got_{f.name}", t),
                        {(f"sel_{f.name}", t): 1.0},
                        {f"cnt_{f.name}": 1.0},
                        cond_bias=-float(c),
                        G=8.0 * Mv,
                    )
        return net
