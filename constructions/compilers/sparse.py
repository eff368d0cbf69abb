"""``sparse`` (Theorem B.4 via Lemma A.12): eq. (6) with B = 2^⌊log₂ √L⌋, one summary token per
block. The window head sums each block into its summary token; a COPY head per fetch takes
the block of t from the latest visible token of that block; an FFN picks t's slot.
D = O(B) = O(√L)."""

from __future__ import annotations

import math

import numpy as np

from constructions.attention import block_copy_head, window_head
from constructions.compilers.base import ETA, Compiler, Stage, slot_rows, spread_fields, spread_part
from constructions.dp import DPSpec
from constructions.mlp import bits, ceil_div_relu, ceil_square, gated_sum, position_features, relu_to_gelu, select_slot
from constructions.residual import Layout
from jaxdp.models import default_block_size

FEATURES = ["is_sum", "sum_c", "f", "c2", "rating", "nbits"]  # `position_features`' outputs


class Sparse(Compiler):
    name, mixer = "sparse", "sparse"

    def period(self, spec):
        return default_block_size(spec.length)

    def head_size(self, spec):
        return max(4, self.period(spec) * len(spread_fields(spec)))

    def positional_spaces(self, spec):
        return [("rmod", 1), ("cblk", 1)]

    def scratch_spaces(self, spec):
        P, d = self.period(spec), len(spread_fields(spec))
        spaces = [
            ("slots", P * d),
            ("window", P * d),
            ("is_sum", 1),
            ("sum_c", 1),
            ("f", 1),
            ("c2", 1),
            ("rating", 1),
            ("nbits", bits(P)),
        ]
        for f in spec.fetches:
            n = f.name
            spaces += [
                (f"b_{n}", 1),
                (f"bm1_{n}", 1),
                (f"pr_{n}", 1),
                (f"b2_{n}", 1),
                (f"copied_{n}", P * len(f.fields)),
            ]
        return spaces

    def positional(self, spec, k):
        P = self.period(spec)
        return dict(rmod=k % P, cblk=np.ceil(k / P))

    def first_parts(self, spec, layout, eps):
        P = self.period(spec)
        feats = relu_to_gelu(position_features(P, -(-spec.length // P)), ETA, margin=1.0)
        return [spread_part(spec, P, eps), (feats, ["rmod", "cblk"], FEATURES)]

    def fetch_stages(self, spec: DPSpec, layout: Layout, eps: float) -> list[Stage]:
        """A.12 layers 2 and 3: the window sums with ⌈t/B⌉, t's place and ⌈t/B⌉²; then the
        block COPY heads and the slot selection."""
        P, K, Mv, R = self.period(spec), self.head_size(spec), float(spec.value_bound), spec.fetches
        C, d = -(-spec.length // P), len(spread_fields(spec))
        lam2 = math.log(2.0 * Mv * C / (eps / 4.0))
        parts = [(relu_to_gelu(gated_sum(P * d, bits(P), Mv), eps / 8.0, margin=Mv), ["window", "nbits"], ["window"])]
        for f in R:
            parts.append(
                (
                    relu_to_gelu(ceil_div_relu(P, C), ETA, margin=0.5),
                    [f"t_{f.name}"],
                    [f"b_{f.name}", f"bm1_{f.name}", f"pr_{f.name}"],
                )
            )
            parts.append((relu_to_gelu(ceil_square(P, C), ETA, margin=0.5), [f"t_{f.name}"], [f"b2_{f.name}"]))
        heads = {
            h: block_copy_head(
                layout,
                B=P,
                C=C,
                eta=ETA,
                M=Mv + eps,
                eps=eps / 4.0,
                values=slot_rows(layout, spec, "window", f, P),
                out=f"copied_{f.name}",
                b=f"b_{f.name}",
                b2=f"b2_{f.name}",
                head_size=K,
            )[0]
            for h, f in enumerate(R)
        }
        select = [
            (
                relu_to_gelu(select_slot(len(f.fields), P, Mv), eps / 8.0, margin=Mv),
                [f"copied_{f.name}", f"pr_{f.name}"],
                [f"got_{f.name}"],
            )
            for f in R
        ]
        return [Stage({0: window_head(layout, lam2, K)}, parts), Stage(heads, select)]

    def options(self, spec, num_heads, eps):
        return dict(block_size=self.period(spec), local_blocks=1, global_tokens=1)
