"""Proposition 5.1 as hand-set weights: a jaxdp model with a constant D that writes Arithmetic's
chain of thought, under standard attention or eq. (6)'s sparse attention with B = 2^⌊log₂ √L⌋.

It computes the step rule of `constructions.arithmetic` (its docstring names what each layer
reads) with one change that keeps every score bilinear: the source block's first ready handle
is found in two hops. Each position j first takes the first ready position of its own block so
far, (pe_j, j] (layer 3: rating A·pe_i + B·ready_i − i, so the latest block wins, then a ready
key, then the earliest), and the query then copies that from the '=' that closes its source
block (layer 4). Positions are 1-indexed; 0 stands for "no '=' yet".

Five blocks (norm "none", exact GeLU, float64 unless asked):

1. heads: e_last (rating M·([=] + [first]) + k, value k − [first]) and the token ids at t−1 …
   t−4 (COPY by −λ(t − k − j)², Lemma A.11); FFN: each of the five ids decoded into a one-hot
   (four ReLUs per class, kinks a quarter unit or more from the integers);
2. head: pe = e_last at t − 1; FFN: ready (two conjunctions of the one-hots), the value (a table
   of 4p² units) and bracket of the operator at t − 2;
3. head: the first ready position of the block so far, with its value, bracket and ready flag;
4. heads: e_prev = pe and the first-ready fields at position e_last; FFN: the next token's rule
   (integer comparisons by the gates of Lemma A.4): a target position, or the value, '=' or <eos>;
5. head: the token id at the target; FFN: `out`, the next token's id, read by rounding (the
   regression setting of `constructions.compile`).

D depends on the vocabulary (p) only; λ grows like log L. The tokens outside a sparse window
never win a score: ratings prefer later blocks and COPY the exact position (docs/proofs.md).
"""

from __future__ import annotations

import dataclasses
import math
import sys

import jax
import jax.numpy as jnp
import numpy as np

from constructions import arithmetic as rule
from constructions.compilers.base import Stage, gelu
from constructions.handset import HandSet, construction_config
from constructions.program import Net
from constructions.residual import Layout, attention_params, block_params, ffn_params
from jaxdp import tasks
from jaxdp.args import Parser, int_at_least
from jaxdp.models.masks import default_block_size
from jaxdp.tasks.arithmetic import OPS

HEAD = 4  # head size: every head scores with at most 3 features and copies at most 4 values
SLOTS = ("left", "a", "op", "b", "right")  # the tokens at t−4 … t: the operator at t−2, judged
EPS = 1e-6  # error budget of every copied number (positions, ids, values)
MIXERS = ("standard", "sparse")


def layout_for(vocab_size: int) -> Layout:
    spaces = [("id", 1), ("eq", 1), ("one", 1), ("k", 1), ("k2", 1), ("first", 1), ("e_last", 1)]
    spaces += [(f"id_{s}", 1) for s in SLOTS if s != "right"]
    spaces += [(f"is_{s}", vocab_size) for s in SLOTS]
    spaces += [("ready", 1), ("value", 1), ("bracket", 1), ("pe", 1)]
    spaces += [("h_pos", 1), ("h_value", 1), ("h_bracket", 1), ("h_ready", 1)]
    spaces += [("e_prev", 1), ("g_pos", 1), ("g_value", 1), ("g_bracket", 1), ("g_ready", 1)]
    spaces += [("copy", 1), ("at", 1), ("end", 1), ("eos", 1), ("target", 1), ("copied", 1), ("out", 1)]
    return Layout(spaces).padded(HEAD)


def _head(layout: Layout, q: list, k: list, v: list, out: list[str]) -> dict:
    """A head whose score is Σ_d q_d·k_d, q_d and k_d affine in the stream ({name: w}, bias), and
    which adds the values `v` (a subspace name, or {name: w}) into `out`. The 1/√HEAD of the
    attention is undone here."""
    D, s = layout.dim, math.sqrt(HEAD)
    maps = {n: np.zeros((D, HEAD)) for n in ("query", "key", "value")}
    maps |= {"query_bias": np.zeros(HEAD), "key_bias": np.zeros(HEAD), "out": np.zeros((HEAD, D))}
    for d, ((qt, qb), (kt, kb)) in enumerate(zip(q, k)):
        for name, w in qt.items():
            maps["query"][layout.indices(name)[0], d] += s * w
        for name, w in kt.items():
            maps["key"][layout.indices(name)[0], d] += w
        maps["query_bias"][d], maps["key_bias"][d] = s * qb, kb
    for d, (terms, dst) in enumerate(zip(v, out)):
        for name, w in ({terms: 1.0} if isinstance(terms, str) else terms).items():
            maps["value"][layout.indices(name)[0], d] += w
        maps["out"][d, layout.indices(dst)[0]] = 1.0
    return maps


def copy_at(layout: Layout, target: tuple[dict, float], lam: float, v: list[str], out: list[str]) -> dict:
    """COPY (Lemma A.11) from the position `target` (affine in the stream): score
    λ(2·target·j − j²), which is −λ(target − j)² up to a term of the query alone."""
    terms, bias = target
    q = [({n: 2 * lam * w for n, w in terms.items()}, 2 * lam * bias), ({}, lam)]
    return _head(layout, q, [({"k": 1.0}, 0.0), ({"k2": -1.0}, 0.0)], v, out)


def rating_head(layout: Layout, rating: dict, lam: float, v: list[str], out: list[str]) -> dict:
    """The key with the largest rating (affine in its stream) wins: score λ·rating_j."""
    return _head(layout, [({}, lam)], [(rating, 0.0)], v, out)


def copy_scale(values: float, length: int, gap: float = 1.0) -> float:
    """λ with 2·values·length·e^{−λ·gap} ≤ EPS: the error bound of a head whose best key beats
    every other by `gap` (Lemma A.11's ln(2·M_v·n/ε)/gap)."""
    return math.log(2.0 * values * length / EPS) / gap


# ------------------------------------------------------------------------------ the stages


def stage_find(layout: Layout, L: int) -> Stage:
    """Block 1: the latest '=' and the four tokens before t; their ids decoded into one-hots."""
    M = L + 1
    last = {"k": 1.0, "first": -1.0}  # 0 for "no '=' yet"
    heads = {0: rating_head(layout, {"eq": M, "first": M, "k": 1.0}, copy_scale(L, L), [last], ["e_last"])}
    lam = copy_scale(L, L)
    for h, (back, slot) in enumerate(zip((1, 2, 3, 4), ("b", "op", "a", "left")), start=1):
        heads[h] = copy_at(layout, ({"k": 1.0}, -float(back)), lam, ["id"], [f"id_{slot}"])
    return Stage(heads, [gelu(decode_net(layout), EPS, margin=0.5)])


def decode_net(layout: Layout) -> Net:
    """is_<slot>[c] = [id_<slot> = c] for every class c, from four ReLUs with kinks at ±1/4, ±3/4."""
    V = layout.size("is_right")
    reads = [f"id_{s}" for s in SLOTS if s != "right"] + ["id"]
    net = Net(layout, reads, [f"is_{s}" for s in SLOTS])
    for slot in SLOTS:
        source = "id" if slot == "right" else f"id_{slot}"
        for c in range(V):
            for bias, coef in ((1.5, 1.0), (0.5, -1.0), (-0.5, -1.0), (-1.5, 1.0)):
                net.relu((f"is_{slot}", c), {source: 2.0}, bias - 2.0 * c, coef)
    return net


def judge_net(layout: Layout, modulus: int, ids: dict[str, int]) -> Net:
    """Block 2: ready, value and bracket of the operator at t−2 (`arithmetic.judge`): each a
    conjunction of one-hot entries, 2·ReLU(Σ literals − (k − 1/2)), exact with margin 1/2."""
    net = Net(layout, [f"is_{s}" for s in SLOTS], ["ready", "value", "bracket"])
    nums = [ids[str(v)] for v in range(modulus)]
    number = lambda slot: {(f"is_{slot}", i): 1.0 for i in nums}  # noqa: E731
    tight = lambda slot, w: {(f"is_{slot}", ids[o]): w for o in rule.TIGHT}  # noqa: E731
    loose = {("is_op", ids[o]): 1.0 for o in OPS if o not in rule.TIGHT}
    free_left = {**number("left"), ("is_left", ids["("]): 1.0, ("is_left", ids["="]): 1.0}
    conj = lambda out, terms, k, coef=1.0: net.relu(out, terms, -(k - 0.5), 2.0 * coef)  # noqa: E731
    conj("ready", {**tight("op", 1.0), **number("a"), **number("b"), **tight("left", -1.0)}, 3)
    conj("ready", {**loose, **number("a"), **number("b"), **free_left, **tight("right", -1.0)}, 4)
    conj("bracket", {("is_left", ids["("]): 1.0, ("is_right", ids[")"]): 1.0}, 2)
    for a in range(modulus):
        for op in OPS:
            for b in range(modulus):
                value = rule.evaluate(a, op, b, modulus)
                if value:
                    terms = {("is_a", ids[str(a)]): 1.0, ("is_op", ids[op]): 1.0, ("is_b", ids[str(b)]): 1.0}
                    conj("value", terms, 3, float(value))
    return net


def stage_block(layout: Layout, L: int, judge: Net) -> list[Stage]:
    """Block 2: pe = e_last(t − 1), beside the judge's FFN; block 3: over (pe_j, j], the first
    ready position with its value, bracket and ready flag (rating A·pe_i + B·ready_i − i; every
    margin is 1)."""
    pe = copy_at(layout, ({"k": 1.0}, -1.0), copy_scale(L, L), ["e_last"], ["pe"])
    B = L + 1.0
    A = B + L + 1.0
    fields, outs = ["k", "value", "bracket", "ready"], ["h_pos", "h_value", "h_bracket", "h_ready"]
    first = rating_head(layout, {"pe": A, "ready": B, "k": -1.0}, copy_scale(L, L), fields, outs)
    return [Stage({0: pe}, [gelu(judge, EPS, margin=0.5)]), Stage({0: first})]


def stage_rule(layout: Layout, L: int) -> Stage:
    """Block 5: from the '=' at e_last, e_prev (its pe) and its first-ready fields; the FFN
    writes the next token's rule (`rule_net`)."""
    lam = copy_scale(L, L)
    at_eq = ({"e_last": 1.0}, 0.0)
    heads = {
        0: copy_at(
            layout, at_eq, lam, ["pe", "h_pos", "h_value", "h_bracket"], ["e_prev", "g_pos", "g_value", "g_bracket"]
        ),
        1: copy_at(layout, at_eq, lam, ["h_ready"], ["g_ready"]),
    }
    return Stage(heads, [gelu(rule_net(layout), EPS, margin=1.0)])


def rule_net(layout: Layout) -> Net:
    """The next token's rule (`arithmetic._next_rule`) from integers: offset o = k − e_last, the
    source start s = e_prev + 1, the handle's first token f = g_pos − 3 − g_bracket, shift =
    2 + 2·g_bracket, the new block's length n' = e_last − e_prev − 1 − shift. Since 0 ≤ o ≤ n'
    and n' ≥ 1: end = [o − n' ≥ 0], eos = [(o − n') + (1 − n') ≥ 0], at = [s + o = f],
    copy = 1 − end − at, target = s + o + shift·[s + o > f]. Gates of Lemma A.4, G = 32."""
    reads = ["k", "e_last", "e_prev", "g_pos", "g_bracket"]
    net = Net(layout, reads, ["copy", "at", "end", "eos", "target"])
    G = 32.0
    past_end = {"k": 1.0, "e_last": -2.0, "e_prev": 1.0, "g_bracket": 2.0}  # o − n' − 3
    net.gate("end", {}, past_end, value_bias=1.0, cond_bias=3.0, G=G)
    eos = {"k": 1.0, "e_last": -3.0, "e_prev": 2.0, "g_bracket": 4.0}  # (o − n') + (1 − n') − 7
    net.gate("eos", {}, eos, value_bias=1.0, cond_bias=7.0, G=G)
    past_f = {"e_prev": 1.0, "k": 1.0, "e_last": -1.0, "g_pos": -1.0, "g_bracket": 1.0}  # s + o − f − 4
    for out, coef in (("at", 1.0), ("copy", -1.0)):
        net.gate(out, {}, past_f, value_bias=coef, cond_bias=4.0, G=G)
        net.gate(out, {}, past_f, value_bias=-coef, cond_bias=3.0, G=G)
    net.gate("copy", {}, past_end, value_bias=-1.0, cond_bias=3.0, G=G)
    net.bias("copy", 1.0)
    net.affine("target", {"e_prev": 1.0, "k": 1.0, "e_last": -1.0}, 1.0)
    net.gate("target", {"g_bracket": 2.0}, past_f, value_bias=2.0, cond_bias=3.0, G=G)
    return net


def stage_out(layout: Layout, L: int, ids: dict[str, int]) -> Stage:
    """Block 5: the token id at the target; the FFN writes the next token's id into `out`."""
    head = copy_at(layout, ({"target": 1.0}, 0.0), copy_scale(L, L), ["id"], ["copied"])
    net = Net(layout, ["copied", "g_value", "copy", "at", "end", "eos"], ["out"])
    G = 4.0 * (len(ids) + 2)
    net.gate("out", {"copied": 1.0}, {"copy": 1.0}, cond_bias=-1.0, G=G)
    net.gate("out", {"g_value": 1.0}, {"at": 1.0}, value_bias=float(ids["0"]), cond_bias=-1.0, G=G)
    net.affine("out", {"end": float(ids["="]), "eos": float(ids["<eos>"] - ids["="])})
    return Stage({0: head}, [gelu(net, EPS, margin=1.0)])


@dataclasses.dataclass(frozen=True)
class ArithmeticModel:
    """A compiled model: its blocks, the token map and positional features, and generation."""

    handset: HandSet
    vocab: tuple[str, ...]
    token_map: np.ndarray  # [V, D]
    positional: np.ndarray  # [L, D]: positions 1..L

    def embed(self, ids_BxT: np.ndarray) -> np.ndarray:
        return self.token_map[np.asarray(ids_BxT)] + self.positional[: np.shape(ids_BxT)[1]]

    def predict(self, ids_BxT: np.ndarray, *, dtype: str = "float64", **forms) -> np.ndarray:
        """Teacher forcing: entry t is the id the model writes after tokens 1..t (rounded)."""
        x = self.handset(self.embed(ids_BxT), dtype, **forms)
        return np.rint(self.handset.layout.read(x, "out")[..., 0]).astype(np.int64)


def compile_arithmetic(task, mixer: str = "standard", local_blocks: int | None = None) -> ArithmeticModel:
    """Hand-set weights for `task` (an `Arithmetic`) under `mixer` (standard, or sparse with the
    paper's B and `local_blocks` local blocks, by default enough for the reach:
    `arithmetic.local_blocks_needed`)."""
    if mixer not in MIXERS:
        raise ValueError(f"compile_arithmetic: mixer must be one of {', '.join(MIXERS)}, got {mixer!r}")
    ids = {token: i for i, token in enumerate(task.vocab)}
    L, layout = task.max_len, layout_for(len(task.vocab))
    stages = [stage_find(layout, L), *stage_block(layout, L, judge_net(layout, task.modulus, ids))]
    stages += [stage_rule(layout, L), stage_out(layout, L, ids)]
    hidden = max(sum(p[0].mlp.hidden for p in stage.parts) for stage in stages)
    options = {}
    if mixer == "sparse":
        B = default_block_size(L)
        k = local_blocks or rule.local_blocks_needed(task.size, L)
        options = {"block_size": B, "local_blocks": k, "global_tokens": 1}
    H = layout.dim // HEAD
    cfg = construction_config(
        layout, hidden, mixer=mixer, num_heads=H, max_len=L, num_layers=len(stages), options=options
    )
    blocks = tuple(
        block_params(
            attention_params(layout, H, stage.heads),
            ffn_params(layout, cfg.hidden_dim, [(m.mlp, r, w) for m, r, w in stage.parts]),
        )
        for stage in stages
    )
    norm = max(float(np.abs(v).max()) for b in blocks for v in b.values())
    handset = HandSet(f"arithmetic[{mixer}]", cfg, layout, blocks, EPS, "ε", EPS, norm)
    return ArithmeticModel(handset, tuple(task.vocab), _token_map(layout, ids), _positional(layout, L))


def _token_map(layout: Layout, ids: dict[str, int]) -> np.ndarray:
    V = len(ids)
    return layout.embed(id=np.arange(V, dtype=np.float64)[:, None], eq=(np.arange(V) == ids["="])[:, None])


def _positional(layout: Layout, L: int) -> np.ndarray:
    k = np.arange(1, L + 1, dtype=np.float64)[:, None]
    return layout.embed(one=np.ones_like(k), k=k, k2=k * k, first=(k == 1).astype(np.float64))


#: the integer features of each block that later blocks read, checked by `feature_errors`
FEATURES = (
    ("e_last", "id_b", "id_op", "id_a", "id_left"),
    ("ready", "value", "bracket", "pe"),
    ("h_pos", "h_value", "h_bracket", "h_ready"),
    ("e_prev", "g_pos", "g_value", "g_bracket", "g_ready", "copy", "at", "end", "eos", "target"),
    ("copied", "out"),
)


def stream(model: ArithmeticModel, ids_BxT: np.ndarray, dtype: str = "float64", **forms) -> np.ndarray:
    """The residual stream after the last block, as float64 numpy."""
    return model.handset(model.embed(ids_BxT), dtype, **forms)


def feature_errors(model: ArithmeticModel, ids_BxT: np.ndarray, rows: np.ndarray, dtype: str = "float64") -> dict:
    """The largest distance of each integer feature from the nearest integer, over the positions
    `rows` (bool [B, T]: where the model writes a CoT token): the measured error that the budget
    EPS per head and per MLP (and the readout's 1/2) bound."""
    x = stream(model, ids_BxT, dtype)
    layout = model.handset.layout
    out = {}
    for names in FEATURES:
        for name in names:
            v = layout.read(x, name)[..., 0][rows]
            out[name] = float(np.abs(v - np.rint(v)).max())
    return out


def generate(model: ArithmeticModel, prompt_ids: list[int], *, dtype: str = "float64", **forms) -> list[int]:
    """Greedy decoding, one token at a time (each step runs the whole prefix): the prompt, then
    each id the model writes, until <eos> or the task's max_len."""
    modules = model.handset.modules(dtype, **forms)
    L, eos = len(model.positional), model.vocab.index("<eos>")

    @jax.jit
    def next_ids(ids):
        x = (jnp.asarray(model.token_map)[ids] + jnp.asarray(model.positional))[None].astype(jnp.dtype(dtype))
        for block in modules:
            x = block(x, deterministic=True)
        return jnp.rint(x[0, :, model.handset.layout.slice("out")][:, 0]).astype(jnp.int32)

    ids = np.zeros(L, np.int32)
    ids[: len(prompt_ids)] = prompt_ids
    t = len(prompt_ids)
    with jax.default_matmul_precision("highest"):
        while t < L:
            ids[t] = int(next_ids(jnp.asarray(ids))[t - 1])
            t += 1
            if ids[t - 1] == eos:
                break
    return ids[:t].tolist()


def encode(task, prompts: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Ids [count, max_len] of each prompt's whole chain (the solver's; 0-padded) and the
    positions that write a CoT token (the prompt's '=' up to the token before <eos>)."""
    ids = {t: i for i, t in enumerate(task.vocab)}
    tokens = np.zeros((len(prompts), task.max_len), np.int64)
    writes = np.zeros((len(prompts), task.max_len), bool)
    for row, prompt in enumerate(prompts):
        chain = prompt + task.solve(prompt)
        tokens[row, : len(chain)] = [ids[t] for t in chain]
        writes[row, len(prompt) - 1 : len(chain) - 1] = True
    return tokens, writes


def wrong_chains(
    model: ArithmeticModel, tokens: np.ndarray, writes: np.ndarray, dtype: str = "float64", **forms
) -> int:
    """Chains with a wrong next token anywhere (teacher-forced: one pass over whole chains)."""
    wrong = (model.predict(tokens, dtype=dtype, **forms)[:, :-1] != tokens[:, 1:]) & writes[:, :-1]
    return int(wrong.any(axis=1).sum())


def check(n: int, mixer: str, dtype: str, count: int, seed: int = 0) -> dict:
    """One row of the command's table: the model's shape, its wrong chains among `count` sampled
    expressions (teacher-forced, every next token) and the largest error of any integer feature."""
    task = tasks.get("arithmetic", n)
    model = compile_arithmetic(task, mixer)
    rng = np.random.default_rng(seed)
    tokens, writes = encode(task, [task.sample(rng).prompt for _ in range(count)])
    wrong = wrong_chains(model, tokens, writes, dtype)
    cfg = model.handset.config
    return dict(
        n=n,
        L=task.max_len - 1,
        mixer=mixer,
        dtype=dtype,
        D=cfg.dim,
        layers=cfg.num_layers,
        B=getattr(cfg.options, "block_size", "-"),
        k=getattr(cfg.options, "local_blocks", "-"),
        wrong=f"{wrong}/{count}",
        error=max(feature_errors(model, tokens, writes, dtype).values()),
    )


def main(argv=None) -> int:
    p = Parser(prog="python -m constructions.arithmetic_model", description=__doc__)
    p.add_argument("--sizes", nargs="+", type=int_at_least(1), default=[1, 3, 7, 16])
    p.add_argument("--count", type=int_at_least(1), default=30, help="sampled expressions per size")
    args = p.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    print("| n | L | mixer | dtype | D | layers | B | k | wrong chains | largest feature error |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        for mixer in MIXERS:
            for dtype in ("float64", "float32"):
                r = check(n, mixer, dtype, args.count)
                print(" | ".join(["", *(str(v) for k, v in r.items() if k != "error"), f"{r['error']:.1e} |"]).strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
