"""`Net`: one FFN's ReLU network written unit by unit over named residual subspaces.

The DP compilers (`constructions.compile`) describe every MLP the paper's Assumption B.1 /
B.2 asks for (next state, positions, the transition f, the answer u) as a ReLU net whose
inputs are integers or 0/1 flags, so every pre-activation is either exactly 0 or at least a
margin γ away from the kink; Lemma A.2 (`relu_to_gelu` with `margin`) then makes the GeLU twin
accurate up to a Gaussian tail. Terms are `{name: weight}` with `name` a subspace of size 1 or
`(subspace, index)`.

>>> from constructions.residual import Layout
>>> layout = Layout(i=1, flag=1, y=1)
>>> net = Net(layout, reads=["i", "flag"], writes=["y"])
>>> net.affine("y", {"i": 2.0}, bias=1.0)          # y += 2i + 1, exact (A.3)
>>> net.gate("y", {"i": 1.0}, {"flag": 1.0}, cond_bias=-1.0, G=64.0)  # y += i·[flag ≥ 1]
>>> net.relu_net().w1.shape
(2, 4)
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from constructions.attention import _ReluNet
from constructions.mlp import LemmaMLP, relu_to_gelu
from constructions.residual import MLP, Layout

Terms = Mapping[object, float]


class Net:
    """A ReLU MLP reading the subspaces `reads` and adding into `writes` (in `ffn_params` order)."""

    def __init__(self, layout: Layout, reads: Sequence[str], writes: Sequence[str]):
        self.layout, self.reads, self.writes = layout, list(reads), list(writes)
        self._in = self._index(self.reads)
        self._out = self._index(self.writes)
        self._net = _ReluNet(len(self._in), len(self._out))

    def _index(self, names: Sequence[str]) -> dict[tuple[str, int], int]:
        keys = [(n, t) for n in names for t in range(self.layout.size(n))]
        return {k: i for i, k in enumerate(keys)}

    @staticmethod
    def _key(name) -> tuple[str, int]:
        return (name, 0) if isinstance(name, str) else (name[0], int(name[1]))

    def _terms(self, terms: Terms, scale: float = 1.0) -> dict[int, float]:
        out: dict[int, float] = {}
        for name, w in terms.items():
            key = self._key(name)
            if key not in self._in:
                raise KeyError(f"Net: {key} is not among the inputs {self.reads}")
            out[self._in[key]] = out.get(self._in[key], 0.0) + scale * w
        return out

    def _o(self, name) -> int:
        key = self._key(name)
        if key not in self._out:
            raise KeyError(f"Net: {key} is not among the outputs {self.writes}")
        return self._out[key]

    def unit(self, terms: Terms, bias: float = 0.0) -> int:
        return self._net.unit(self._terms(terms), bias)

    def emit(self, out, unit: int, coef: float = 1.0) -> None:
        self._net.emit(self._o(out), unit, coef)

    def bias(self, out, value: float) -> None:
        self._net.b2[self._o(out)] += value

    def relu(self, out, terms: Terms, bias: float = 0.0, coef: float = 1.0) -> None:
        """out += coef·ReLU(terms + bias)."""
        self.emit(out, self.unit(terms, bias), coef)

    def affine(self, out, terms: Terms, bias: float = 0.0, coef: float = 1.0) -> None:
        """out += coef·(terms + bias), exactly: z = ReLU(z) − ReLU(−z) (Lemma A.3)."""
        self.relu(out, terms, 0.0, coef)
        self.relu(out, {k: -w for k, w in terms.items()}, 0.0, -coef)
        self.bias(out, coef * bias)

    def gate(self, out, value: Terms, cond: Terms, *, value_bias: float = 0.0, cond_bias: float = 0.0,
             G: float, coef: float = 1.0) -> None:  # fmt: skip
        """out += coef·v·[c ≥ 0] for v = value + value_bias, c = cond + cond_bias an integer (or a
        0/1 flag sum), |v| ≤ G/4: ReLU(v + G·c + G/2) − ReLU(G·c + G/2) (the gate of Lemma A.4).
        Every pre-activation is at least G/4 from the kink."""
        both = dict(self._terms(value))
        for k, w in self._terms(cond, G).items():
            both[k] = both.get(k, 0.0) + w
        u = self._net.unit(both, value_bias + G * cond_bias + G / 2)
        shared = self._net.unit(self._terms(cond, G), G * cond_bias + G / 2)
        self.emit(out, u, coef)
        self.emit(out, shared, -coef)

    def relu_net(self) -> MLP:
        if not self._net.cols:
            raise ValueError(f"Net writing {self.writes} has no units")
        return self._net.mlp()

    def part(self, eps: float, margin: float = 1.0) -> tuple[LemmaMLP, list[str], list[str]]:
        """The GeLU twin (Lemma A.2 with a margin) and its (reads, writes), for `ffn_params`."""
        return relu_to_gelu(self.relu_net(), eps, margin=margin), self.reads, self.writes
