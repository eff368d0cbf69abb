"""ReLU networks written unit by unit: `ReluNet` over raw coordinates (the A.12 MLPs in
`constructions.mlp`), `Net` over named residual subspaces (every MLP of a compiled DP).

The DP compilers (`constructions.compile`) describe every MLP the paper's Assumption B.1 /
B.2 asks for (next state, positions, the transition f, the answer u) as a ReLU net whose
inputs are integers or 0/1 flags, so every pre-activation is either exactly 0 or at least a
margin γ away from the kink; Lemma A.2 (`constructions.mlp.relu_to_gelu` with `margin`) then
makes the GeLU twin accurate up to a Gaussian tail. Terms are `{name: weight}` with `name` a subspace of size 1 or
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

from collections.abc import Mapping, Sequence

import numpy as np

from constructions.residual import MLP, Layout

Terms = Mapping[object, float]


class ReluNet:
    """A ReLU MLP written unit by unit: `unit({input: weight}, bias)`, then `emit(out, unit, c)`.

    >>> net = ReluNet(1, 1)
    >>> net.emit(0, net.unit({0: 1.0}, 0.0), 2.0)    # y = 2·ReLU(x)
    >>> net.mlp().w2.tolist()
    [[2.0]]
    """

    def __init__(self, d_in: int, d_out: int):
        self.d_in, self.cols, self.bias, self.outs = d_in, [], [], []
        self.b2 = np.zeros(d_out)

    def unit(self, weights: Mapping[int, float], bias: float) -> int:
        col = np.zeros(self.d_in)
        for i, w in weights.items():
            col[i] += w
        self.cols.append(col)
        self.bias.append(bias)
        return len(self.cols) - 1

    def emit(self, out: int, unit: int, coef: float) -> None:
        self.outs.append((unit, out, coef))

    def mlp(self) -> MLP:
        w2 = np.zeros((len(self.cols), len(self.b2)))
        for unit, out, coef in self.outs:
            w2[unit, out] += coef
        return MLP(np.stack(self.cols, axis=1), np.array(self.bias), w2, self.b2.copy())


class Net:
    """A ReLU MLP reading the subspaces `reads` and adding into `writes` (in `ffn_params` order)."""

    def __init__(self, layout: Layout, reads: Sequence[str], writes: Sequence[str]):
        self.layout, self.reads, self.writes = layout, list(reads), list(writes)
        self._in = self._index(self.reads)
        self._out = self._index(self.writes)
        self._net = ReluNet(len(self._in), len(self._out))

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

    def gate(
        self,
        out,
        value: Terms,
        cond: Terms,
        *,
        value_bias: float = 0.0,
        cond_bias: float = 0.0,
        G: float,
        coef: float = 1.0,
    ) -> None:
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

    def choose(self, out, flag, when_flag: tuple[Terms, float], otherwise: Terms, *, G: float) -> None:
        """out += `when_flag` (terms, bias) if the 0/1 `flag` is 1, else `otherwise` (terms):
        `otherwise` exactly, then two gates on [flag ≥ 1] swap it for `when_flag`."""
        self.affine(out, otherwise)
        self.gate(out, otherwise, {flag: 1.0}, cond_bias=-1.0, G=G, coef=-1.0)
        self.gate(out, when_flag[0], {flag: 1.0}, value_bias=when_flag[1], cond_bias=-1.0, G=G)

    def relu_net(self) -> MLP:
        if not self._net.cols:
            raise ValueError(f"Net writing {self.writes} has no units")
        return self._net.mlp()
