"""Compilers: a `DPSpec` (`constructions.dp`) -> hand-set jaxdp models that write its whole CoT.

Every compiler lays out one residual stream — the token (state, fields, end), positional
features, scratch — and fills a stack of real `jaxdp.models.Block`s (norm "none", exact GeLU):

1. FFN: the next state and fin (Assumption B.2); per compiler, each token's fields spread into
   slot (k mod B) of B slots (A.12 layer 1, `_slot_spread`).
2. FFN: the flags [i' = 1], [j' = 1], [j' = M] and the target position t of every fetch.
3. The fetch — where the models differ:
   * ``standard`` (Theorem 4.1, after Feng et al.): one COPY head per fetch (Lemma A.11), scores
     −λ(t − j)² from t, t² and the positional (k, k²); constant D.
   * ``local`` (Proposition 5.4 / C.3): the same heads under the sparse mask of eq. (6) with
     B = m (block size the spec's locality): everything a token needs lies in its window.
   * ``sparse`` (Theorem B.4 via Lemma A.12): B = 2^⌊log₂ √L⌋; the window head sums each block
     into its summary token, a COPY head per fetch takes the block of t from the latest visible
     token of that block, an FFN selects t's slot; D = O(B) = O(√L).
   * ``linear`` (Theorem B.3 via Lemma A.9): W = ⌈√L⌉; one AGG head per fetch averages the block
     ⌈t/W⌉ (slots, as above), an FFN selects t's slot and multiplies by the block's count;
     D = O(W) = O(√L).
4. FFNs: the transition f and the answer u (Assumption B.1), writing the next token into `out`.

`CompiledDP.generate` runs the blocks autoregressively and rounds `out` (the regression setting).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from constructions.attention import (_bits, _ceil_square, _gated_sum, _position_features, _select_slot,
                                     _slot_spread, agg_head, agg_scale, block_copy_head, copy_head,
                                     window_head)  # fmt: skip
from constructions.dp import GridDP
from constructions.handset import HandSet, construction_config
from constructions.mlp import ceil_div_relu, relu_to_gelu
from constructions.program import Net
from constructions.residual import Layout, attention_params, block_params, ffn_params
from jaxdp.models import default_block_size

COMPILERS = ("standard", "local", "sparse", "linear")
MODES = ("recompute", "decode")
EPS = 1e-3  # error budget of each fetched field; the readout rounds, so anything < 1/2 is exact
ETA = 1e-9  # error budget of the integer features (state, flags, targets, blocks)


def period(spec: GridDP, compiler: str) -> int:
    """B (sparse: the paper's 2^⌊log₂ √L⌋; local: the locality m), W = ⌈√L⌉ (linear), or 0."""
    L = spec.length
    return {"standard": 0, "local": spec.m, "sparse": default_block_size(L), "linear": math.isqrt(L - 1) + 1}[compiler]


def _check(spec: GridDP, compiler: str) -> None:
    if compiler not in COMPILERS:
        raise ValueError(f"compile: compiler {compiler!r} is not one of {', '.join(COMPILERS)}")
    if compiler == "local" and not spec.local:
        raise ValueError(f"compile: compiler 'local' (Proposition 5.4) needs an m-local spec; {spec.name} has "
                         f"m = {spec.m} ≈ L. Use local=True.")  # fmt: skip


def _spread_fields(spec: GridDP) -> list[str]:
    """The token fields some fetch copies, in token order (what the slots hold)."""
    wanted = {f for fetch in spec.fetches for f in fetch.fields}
    return [f for f in spec.fields if f in wanted]


def layout_for(spec: GridDP, compiler: str) -> tuple[Layout, int]:
    """The residual layout (padded to whole heads) and the head size; cheap, no weights."""
    _check(spec, compiler)
    P, R = period(spec, compiler), spec.fetches
    d = len(_spread_fields(spec))
    pos = [("one", 1), ("k", 1)]
    shared: list[tuple[str, int]] = []
    per: list[tuple[str, int]] = []
    if compiler in ("standard", "local"):
        pos.append(("k2", 1))
        per = [(f"t2_{f.name}", 1) for f in R]
        head = 4
    elif compiler == "sparse":
        pos += [("rmod", 1), ("cblk", 1)]
        shared = [("slots", P * d), ("window", P * d), ("is_sum", 1), ("sum_c", 1), ("f", 1), ("c2", 1),
                  ("rating", 1), ("nbits", _bits(P))]  # fmt: skip
        for f in R:
            per += [(f"b_{f.name}", 1), (f"bm1_{f.name}", 1), (f"pr_{f.name}", 1), (f"b2_{f.name}", 1),
                    (f"copied_{f.name}", P * len(f.fields))]  # fmt: skip
        head = max(4, P * d)
    else:
        pos += [("rmod", 1), ("khot", P)]
        shared = [("slots", P * d)]
        for f in R:
            per += [(f"b_{f.name}", 1), (f"bm1_{f.name}", 1), (f"pr_{f.name}", 1), (f"qhot_{f.name}", P),
                    (f"cnt_{f.name}", 1), (f"agg_{f.name}", P * len(f.fields)), (f"sel_{f.name}", len(f.fields))]
        head = P * max(len(f.fields) for f in R)
    spaces = (spec.token_layout() + pos + [("nstate", 4), ("fin", 1), ("r1", 1), ("c1", 1), ("cM", 1)]
              + [(f"t_{f.name}", 1) for f in R] + shared + per
              + [(f"got_{f.name}", len(f.fields)) for f in R] + spec.work() + [("out", spec.width)])  # fmt: skip
    return Layout(spaces).padded(head), head


def dims(spec: GridDP, compiler: str) -> int:
    """D, the residual width the compiler needs for `spec`."""
    return layout_for(spec, compiler)[0].dim


@dataclasses.dataclass(frozen=True)
class CompiledDP:
    """A compiled model: its blocks (`handset`), the token and position maps, and generation."""

    spec: GridDP
    compiler: str
    handset: HandSet
    period: int
    token_map: np.ndarray  # [width, D]: a token vector into the residual stream
    positional: np.ndarray  # [L, D]: the positional features of positions 1..L

    @property
    def config(self):
        return self.handset.config

    def embed(self, tokens_BxTxW: np.ndarray) -> np.ndarray:
        T = tokens_BxTxW.shape[1]
        return np.asarray(tokens_BxTxW, np.float64) @ self.token_map + self.positional[:T]

    def predict(self, tokens_BxLxW: np.ndarray, *, dtype: str = "float64", **forms) -> np.ndarray:
        """Teacher forcing: one pass over whole sequences; entry t is the rounded token the model
        emits after tokens 1..t. The blocks are causal, so if it equals token t + 1 at every CoT
        position, `generate` reproduces the sequence exactly (induction on t)."""
        out = self.handset.layout.slice("out")
        x = self.handset(self.embed(tokens_BxLxW), dtype, **forms)
        return np.rint(x[..., out])

    def generate(self, a: np.ndarray, b: np.ndarray, *, dtype: str = "float64", mode: str = "recompute",
                 **forms) -> np.ndarray:  # fmt: skip
        """The whole sequence [count, L, width] for inputs a [count, N], b [count, M]: the prompt,
        then every later token generated from the ones before it and rounded.

        `mode` "recompute": each step runs the full prefix through the blocks (the kernel form
        chosen by `forms`: `sparse_form`, `linear_form`, `chunk_size`); "decode": the prompt in
        one prefill, then one `Block.step` per token with the kernels' decoding states."""
        if mode not in MODES:
            raise ValueError(f"generate: mode {mode!r} is not one of {', '.join(MODES)}")
        spec, layout = self.spec, self.handset.layout
        P, L = spec.prompt_len, spec.length
        prompts = np.stack([spec.prompt(x, y) for x, y in zip(a, b)])
        tokens0 = np.zeros((len(prompts), L, spec.width))
        tokens0[:, :P] = prompts
        with jax.default_matmul_precision("highest"):
            modules = self.handset.modules(dtype, **forms)
            dt = jnp.dtype(dtype)
            E, pos = jnp.asarray(self.token_map, dt), jnp.asarray(self.positional, dt)
            out = layout.slice("out")
            read = lambda h: jnp.rint(h[..., out].astype(jnp.float32 if dtype == "bfloat16" else dt))  # noqa: E731

            def recompute(tokens):
                def body(t, tokens):
                    x = tokens @ E + pos[None]
                    for block in modules:
                        x = block(x, deterministic=True)
                    return tokens.at[:, t].set(read(x[:, t - 1]))

                return jax.lax.fori_loop(P, L, body, tokens)

            def decode(tokens):
                x, states = tokens[:, :P] @ E + pos[None, :P], []
                for block in modules:
                    x, state = block.prefill(x, block.attn.init_state(tokens.shape[0], L))
                    states.append(state)
                tokens = tokens.at[:, P].set(read(x[:, -1]))

                def body(t, carry):
                    tokens, states = carry
                    h, new = tokens[:, t] @ E + pos[t], []
                    for block, state in zip(modules, states):
                        h, state = block.step(h, state, t)
                        new.append(state)
                    return tokens.at[:, t + 1].set(read(h)), tuple(new)

                return jax.lax.fori_loop(P, L - 1, body, (tokens, tuple(states)))[0]

            run = jax.jit(recompute if mode == "recompute" else decode)
            return np.asarray(run(jnp.asarray(tokens0, dt)).astype(jnp.float32), np.float64)


def _positional(layout: Layout, compiler: str, P: int, L: int) -> np.ndarray:
    k = np.arange(1, L + 1, dtype=np.float64)[:, None]
    feats = dict(one=np.ones_like(k), k=k)
    if compiler in ("standard", "local"):
        feats["k2"] = k * k
    else:
        feats["rmod"] = k % P
        if compiler == "sparse":
            feats["cblk"] = np.ceil(k / P)
        else:
            feats["khot"] = np.eye(P)[(np.ceil(k[:, 0] / P) - 1).astype(int)]
    return layout.embed(**feats)


def _targets(spec: GridDP, layout: Layout, squares: bool) -> Net:
    """Stage 2: flags and, per fetch, t (and t² for COPY by position) of the next state."""
    writes = ["r1", "c1", "cM"] + [f"t_{f.name}" for f in spec.fetches]
    writes += [f"t2_{f.name}" for f in spec.fetches] if squares else []
    reads = ["nstate", "k"] + (["k2"] if squares else [])
    net = Net(layout, reads, writes)
    spec.flags(net)
    var = {"k": ("k", "k2"), "i": (("nstate", 0), ("nstate", 2)), "j": (("nstate", 1), ("nstate", 3))}
    L = spec.length
    G = 8.0 * (L * L if squares else L)
    for f in spec.fetches:
        (v1, o1), (v2, o2) = spec.target(f.name, True), spec.target(f.name, False)
        lin = lambda v, o: ({var[v][0]: 1.0}, float(o))  # noqa: E731
        sq = lambda v, o: ({var[v][1]: 1.0, var[v][0]: 2.0 * o}, float(o * o))  # noqa: E731
        for out, form in [(f"t_{f.name}", lin)] + ([(f"t2_{f.name}", sq)] if squares else []):
            later, first = form(v2, o2), form(v1, o1)
            net.affine(out, later[0], later[1])
            if (v1, o1) != (v2, o2):  # row 1 (i' ≤ 1, i.e. 1 − i' ≥ 0) points elsewhere
                diff = dict(first[0])
                for key, w in later[0].items():
                    diff[key] = diff.get(key, 0.0) - w
                net.gate(out, diff, {("nstate", 0): -1.0}, value_bias=first[1] - later[1], cond_bias=1.0, G=G)
    return net


def compile_dp(spec: GridDP, compiler: str, eps: float = EPS) -> CompiledDP:
    """Hand-set weights of a jaxdp model of kind `compiler` (`COMPILERS`) that generates the CoT
    of `spec` for every input; see the module docstring for what each compiler does."""
    layout, K = layout_for(spec, compiler)
    D, H = layout.dim, layout.dim // K
    P, L, R = period(spec, compiler), spec.length, spec.fetches
    Mv = float(spec.value_bound)
    fields = _spread_fields(spec)
    d = len(fields)
    stages: list[tuple[dict, list]] = []  # (heads, [(LemmaMLP, reads, writes)]) per block
    copy_heads: dict = {}  # standard/local: the COPY heads, which share the first transition block

    first = [spec.next_state(layout).part(ETA)]
    if compiler in ("sparse", "linear"):
        spread = relu_to_gelu(_slot_spread(d, P, Mv), eps / (8.0 * P), margin=Mv)
        first.append((spread, fields + ["rmod"], ["slots"]))
    if compiler == "sparse":
        C = -(-L // P)
        first.append((relu_to_gelu(_position_features(P, C), ETA, margin=1.0), ["rmod", "cblk"],
                      ["is_sum", "sum_c", "f", "c2", "rating", "nbits"]))  # fmt: skip
    stages.append(({}, first))
    tnet = _targets(spec, layout, squares=compiler in ("standard", "local"))
    stages.append(({}, [tnet.part(ETA)]))

    got: dict[tuple[str, str], tuple[str, int]] = {}
    for f in R:
        for t, field in enumerate(f.fields):
            got[(f.name, field)] = (f"got_{f.name}", t)
    field_rows = lambda base, f: np.array([layout.indices(base)[s * d + fields.index(x)]  # noqa: E731
                                           for s in range(P) for x in f.fields])  # fmt: skip

    if compiler in ("standard", "local"):
        for h, f in enumerate(R):
            Q, Kx, V = np.zeros((3, D)), np.zeros((3, D)), np.zeros((len(f.fields), D))
            Q[0, layout.indices(f"t_{f.name}")], Q[1, layout.indices(f"t2_{f.name}")] = 2.0, -1.0
            Kx[0, layout.indices("k")], Kx[2, layout.indices("k2")] = 1.0, 1.0
            V[np.arange(len(f.fields)), layout.indices(list(f.fields))] = 1.0
            copy_heads[h] = copy_head(layout, Q, Kx, V, np.zeros(D), f"got_{f.name}", rho=1e-6, delta=1.0,
                                      rating_range=1.0, M_v=Mv, n=L, eps=eps, q_bias=[0.0, 0.0, -1.0],
                                      k_bias=[0.0, 1.0, 0.0], head_size=K)[0]  # fmt: skip
    elif compiler == "sparse":
        C, nb = -(-L // P), _bits(P)
        lam2 = math.log(2.0 * Mv * C / (eps / 4.0))
        parts = [(relu_to_gelu(_gated_sum(P * d, nb, Mv), eps / 8.0, margin=Mv), ["window", "nbits"], ["window"])]
        for f in R:
            parts.append((relu_to_gelu(ceil_div_relu(P, C), ETA, margin=0.5), [f"t_{f.name}"],
                          [f"b_{f.name}", f"bm1_{f.name}", f"pr_{f.name}"]))  # fmt: skip
            parts.append((relu_to_gelu(_ceil_square(P, C), ETA, margin=0.5), [f"t_{f.name}"], [f"b2_{f.name}"]))
        stages.append(({0: window_head(layout, lam2, K)}, parts))
        heads, parts = {}, []
        for h, f in enumerate(R):
            heads[h] = block_copy_head(layout, B=P, C=C, eta=ETA, M=Mv + eps, eps=eps / 4.0,
                                       values=field_rows("window", f), out=f"copied_{f.name}",
                                       b=f"b_{f.name}", b2=f"b2_{f.name}", head_size=K)[0]  # fmt: skip
            parts.append((relu_to_gelu(_select_slot(len(f.fields), P, Mv), eps / 8.0, margin=Mv),
                          [f"copied_{f.name}", f"pr_{f.name}"], [f"got_{f.name}"]))  # fmt: skip
        stages.append((heads, parts))
    else:  # linear
        W = P
        parts = [(relu_to_gelu(ceil_div_relu(W, W), ETA, margin=0.5), [f"t_{f.name}"],
                  [f"b_{f.name}", f"bm1_{f.name}", f"pr_{f.name}"]) for f in R]  # fmt: skip
        stages.append(({}, parts))
        net = Net(layout, ["k"] + [n for f in R for n in (f"b_{f.name}", f"bm1_{f.name}")],
                  [n for f in R for n in (f"qhot_{f.name}", f"cnt_{f.name}")])  # fmt: skip
        for f in R:
            b = f"b_{f.name}"
            for s in range(1, W + 1):  # [b = s] at integers: a hat of width 1
                net.relu((f"qhot_{f.name}", s - 1), {b: 1.0}, 1.0 - s)
                net.relu((f"qhot_{f.name}", s - 1), {b: 1.0}, -float(s), coef=-2.0)
                net.relu((f"qhot_{f.name}", s - 1), {b: 1.0}, -1.0 - s)
            a = {"k": 1.0, f"bm1_{f.name}": -float(W)}  # tokens of block b up to k: min(W, k − W(b − 1))
            net.affine(f"cnt_{f.name}", a)
            net.relu(f"cnt_{f.name}", a, -float(W), coef=-1.0)
        stages.append(({}, [net.part(ETA)]))
        eps_agg = eps / (4.0 * W)
        mu = agg_scale(Mv, W, K, eps_agg)
        heads = {h: agg_head(layout, mu, K, query=f"qhot_{f.name}", key="khot", values=field_rows("slots", f),
                             out=f"agg_{f.name}") for h, f in enumerate(R)}  # fmt: skip
        parts = [(relu_to_gelu(_select_slot(len(f.fields), W, Mv), eps_agg, margin=Mv),
                  [f"agg_{f.name}", f"pr_{f.name}"], [f"sel_{f.name}"]) for f in R]  # fmt: skip
        stages.append((heads, parts))
        net = Net(layout, [n for f in R for n in (f"sel_{f.name}", f"cnt_{f.name}")], [f"got_{f.name}" for f in R])
        for f in R:
            for t in range(len(f.fields)):
                for c in range(1, W + 1):  # v·cnt = Σ_c v·[cnt ≥ c]
                    net.gate((f"got_{f.name}", t), {(f"sel_{f.name}", t): 1.0}, {f"cnt_{f.name}": 1.0},
                             cond_bias=-float(c), G=8.0 * Mv)  # fmt: skip
        stages.append(({}, [net.part(ETA)]))

    for t, net in enumerate(spec.transition(layout, got)):
        stages.append((copy_heads if t == 0 else {}, [net.part(ETA)]))

    hidden = max(sum(p[0].mlp.hidden for p in parts) for _, parts in stages)
    fields_cfg = dict(attention={"standard": "standard", "local": "sparse", "sparse": "sparse",
                                 "linear": "linear"}[compiler], num_heads=H, max_len=L)  # fmt: skip
    if compiler in ("local", "sparse"):
        fields_cfg.update(block_size=P, local_blocks=1, global_tokens=1)
    cfg = construction_config(layout, hidden, **fields_cfg)
    blocks = tuple(block_params(attention_params(layout, H, heads),
                                ffn_params(layout, cfg.hidden_dim, [(m.mlp, r, w) for m, r, w in parts]))
                   for heads, parts in stages)  # fmt: skip
    token_map = np.zeros((spec.width, D))
    token_map[np.arange(spec.width), layout.indices([n for n, _ in spec.token_layout()])] = 1.0
    handset = HandSet(f"compile[{compiler}]", cfg.replace(num_layers=len(blocks)), layout, blocks, eps, "ε",
                      eps, max(float(np.abs(v).max()) for blk in blocks for v in blk.values()))  # fmt: skip
    return CompiledDP(spec, compiler, handset, P, token_map, _positional(layout, compiler, P, L))


def generate_reference(spec: GridDP, a: Sequence, b: Sequence) -> np.ndarray:
    """The exact sequences [count, L, width] (the spec's textbook DP)."""
    return np.stack([spec.tokens(x, y) for x, y in zip(a, b)])
