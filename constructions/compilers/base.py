"""What every DP compiler shares: the `Compiler` interface, a `Stage` (one block's heads and
MLPs), and the stages every compiler runs around its own fetch — the next state and the fetch
targets before it, the transition after it (Assumptions B.1, B.2; docs/paper.md §2).

A compiler names the jaxdp mixer its blocks run, the residual subspaces and positional
features it needs, and its fetch stages: how the fields a `DPSpec` asks for (`fetches`) reach
``got_<fetch>`` of the token that needs them. `constructions.compile.compile_dp` runs the
stages in order.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from constructions.dp import DPSpec, Fetch
from constructions.mlp import LemmaMLP, relu_to_gelu, slot_spread
from constructions.program import Net
from constructions.residual import Layout

EPS = 1e-3  # error budget of each fetched field; the readout rounds, so anything < 1/2 is exact
ETA = 1e-9  # error budget of the integer features (state, flags, targets, blocks)

Part = tuple[LemmaMLP, list[str], list[str]]  # an MLP of an FFN with its (reads, writes)


@dataclasses.dataclass(frozen=True)
class Stage:
    """One block: attention heads {head index: maps} (`residual.attention_params`) and the
    MLPs its FFN runs side by side (`residual.ffn_params`)."""

    heads: dict = dataclasses.field(default_factory=dict)
    parts: list[Part] = dataclasses.field(default_factory=list)


def gelu(net: Net, eps: float = ETA, margin: float = 1.0) -> Part:
    """A net's GeLU twin (Lemma A.2 with a margin) and its (reads, writes), for `ffn_params`."""
    return relu_to_gelu(net.relu_net(), eps, margin=margin), net.reads, net.writes


def spread_fields(spec: DPSpec) -> list[str]:
    """The token fields some fetch copies, in token order (what the slots hold)."""
    wanted = {f for fetch in spec.fetches for f in fetch.fields}
    return [f for f in spec.fields if f in wanted]


def slot_rows(layout: Layout, spec: DPSpec, base: str, fetch: Fetch, slots: int) -> np.ndarray:
    """The coordinates of `fetch`'s fields in each of `slots` slots of subspace `base` (slot s
    holds `spread_fields` of the tokens at positions ≡ s mod `slots`)."""
    fields = spread_fields(spec)
    rows = layout.indices(base)
    return np.array([rows[s * len(fields) + fields.index(x)] for s in range(slots) for x in fetch.fields])


def got_map(spec: DPSpec) -> dict[tuple[str, str], tuple[str, int]]:
    """(fetch, field) -> the coordinate ``got_<fetch>`` where the fetch stages leave it."""
    return {(f.name, field): (f"got_{f.name}", t) for f in spec.fetches for t, field in enumerate(f.fields)}


def target_net(spec: DPSpec, layout: Layout, squares: bool) -> Net:
    """Stage 2: the next state's flags and, per fetch, its target position t (and t², for
    COPY by position) from `DPSpec.target_rule`: an affine function of the current position k
    or of a next-state variable, switched by a gate while the state is early."""
    writes = list(spec.flag_names) + [f"t_{f.name}" for f in spec.fetches]
    writes += [f"t2_{f.name}" for f in spec.fetches] if squares else []
    net = Net(layout, ["nstate", "k"] + (["k2"] if squares else []), writes)
    spec.flags(net)
    var = {"k": ("k", "k2"), **{v: (("nstate", i), ("nstate", sq)) for v, (i, sq) in spec.state_vars.items()}}
    G = 8.0 * (spec.length**2 if squares else spec.length)
    lin = lambda v, o: ({var[v][0]: 1.0}, float(o))  # noqa: E731
    sq = lambda v, o: ({var[v][1]: 1.0, var[v][0]: 2.0 * o}, float(o * o))  # noqa: E731  (v + o)²
    for f in spec.fetches:
        rule = spec.target_rule(f.name)
        for out, form in [(f"t_{f.name}", lin)] + ([(f"t2_{f.name}", sq)] if squares else []):
            later = form(*rule.at)
            net.affine(out, later[0], later[1])
            if rule.instead is not None:  # while variable ≤ bound, i.e. bound − variable ≥ 0
                first = form(*rule.instead)
                diff = dict(first[0])
                for key, w in later[0].items():
                    diff[key] = diff.get(key, 0.0) - w
                v, bound = rule.early
                net.gate(out, diff, {var[v][0]: -1.0}, value_bias=first[1] - later[1], cond_bias=float(bound), G=G)
    return net


class Compiler:
    """One way of fetching: the mixer, the subspaces, the positional features, the stages.

    Subclasses set `name`, `mixer` and, for COPY by position, `squares` (the targets carry
    t², the positions k²), and override what differs from these defaults."""

    name = ""
    mixer = "standard"
    squares = False

    def check(self, spec: DPSpec) -> None:
        """Refuse a spec this compiler cannot solve (ValueError naming why)."""

    def period(self, spec: DPSpec) -> int:
        """Its block size B or W (0: none)."""
        return 0

    def head_size(self, spec: DPSpec) -> int:
        return 4

    def positional_spaces(self, spec: DPSpec) -> list[tuple[str, int]]:
        """Positional subspaces besides ``one`` and ``k``."""
        return []

    def scratch_spaces(self, spec: DPSpec) -> list[tuple[str, int]]:
        """The fetch stages' subspaces besides ``t_<fetch>`` and ``got_<fetch>``."""
        return []

    def positional(self, spec: DPSpec, k: np.ndarray) -> dict[str, np.ndarray]:
        """The features of `positional_spaces` at positions k [L, 1] (1-indexed)."""
        return {}

    def first_parts(self, spec: DPSpec, layout: Layout, eps: float) -> list[Part]:
        """MLPs that run beside the next-state map in the first block."""
        return []

    def fetch_stages(self, spec: DPSpec, layout: Layout, eps: float) -> list[Stage]:
        raise NotImplementedError

    def options(self, spec: DPSpec, num_heads: int, eps: float) -> dict:
        """The mixer's options in the config (block size, window, decays, ...)."""
        return {}

    def mixer_params(self, spec: DPSpec, dim: int, num_heads: int, eps: float) -> dict:
        """The mixer's own parameters of every block ({dotted path: array}; gates)."""
        return {}


def spread_part(spec: DPSpec, slots: int, eps: float) -> Part:
    """Each token's `spread_fields` into slot (k mod `slots`) of ``slots`` (A.12 layer 1)."""
    Mv = float(spec.value_bound)
    spread = relu_to_gelu(slot_spread(len(spread_fields(spec)), slots, Mv), eps / (8.0 * slots), margin=Mv)
    return spread, spread_fields(spec) + ["rmod"], ["slots"]
