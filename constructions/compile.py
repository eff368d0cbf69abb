"""Compile a `DPSpec` (`constructions.dp`) into hand-set jaxdp models that write its whole CoT.

Every compiler lays out one residual stream — the token (state, fields, end), positional
features, scratch — and fills a stack of real `jaxdp.models.Block`s (norm "none", exact GeLU).
`compile_dp` is a pipeline of stages (`constructions.compilers.base.Stage`, one block each):

1. the next state and fin (Assumption B.2, `DPSpec.next_state`), beside the compiler's
   `first_parts` (sparse, linear: each token's fields spread into slot k mod B, A.12 layer 1);
2. the next state's flags and every fetch's target position t (`compilers.base.target_net`);
3. the compiler's `fetch_stages`, which leave each fetched field in ``got_<fetch>``:
   * ``standard`` (Theorem 4.1), ``local`` (Proposition 5.4, eq. (6) with B = m) and
     ``window`` (a sliding window of m tokens): one COPY head per fetch (Lemma A.11), scores
     −λ(t − j)²; constant D (`compilers.copy`);
   * ``sparse`` (Theorem B.4 via Lemma A.12): B = 2^⌊log₂ √L⌋, D = O(√L) (`compilers.sparse`);
   * ``linear`` (Theorem B.3 via Lemma A.9): W = ⌈√L⌉, D = O(√L) (`compilers.linear`);
4. the transition f and the answer u (Assumption B.1, `DPSpec.transition`), writing the next
   token into `out`.

A block whose FFN is empty is fused with the following block that has no heads (the COPY
heads share the first transition block). `CompiledDP.generate` runs the blocks
autoregressively and rounds `out` (the regression setting).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from constructions import compilers
from constructions.compilers import ALL_COMPILERS, COMPILERS, EPS, Compiler, Stage
from constructions.compilers.base import gelu, got_map, target_net
from constructions.dp import DPSpec
from constructions.handset import HandSet, construction_config
from constructions.residual import Layout, attention_params, block_params, ffn_params

__all__ = [
    "ALL_COMPILERS",
    "COMPILERS",
    "EPS",
    "MODES",
    "CompiledDP",
    "compile_dp",
    "dims",
    "generate_reference",
    "layout_for",
    "period",
]
MODES = ("recompute", "decode")


def period(spec: DPSpec, compiler: str) -> int:
    """B (sparse: the paper's 2^⌊log₂ √L⌋; local, window: the locality m), W = ⌈√L⌉ (linear), or 0."""
    return compilers.get(compiler).period(spec)


def layout_for(spec: DPSpec, compiler: str) -> tuple[Layout, int]:
    """The residual layout (padded to whole heads) and the head size; cheap, no weights."""
    c = compilers.get(compiler)
    c.check(spec)
    R = spec.fetches
    spaces = (
        spec.token_layout()
        + [("one", 1), ("k", 1)]
        + c.positional_spaces(spec)
        + [("nstate", spec.state_size), ("fin", 1)]
        + [(f, 1) for f in spec.flag_names]
        + [(f"t_{f.name}", 1) for f in R]
        + c.scratch_spaces(spec)
        + [(f"got_{f.name}", len(f.fields)) for f in R]
        + spec.work()
        + [("out", spec.width)]
    )
    K = c.head_size(spec)
    return Layout(spaces).padded(K), K


def dims(spec: DPSpec, compiler: str) -> int:
    """D, the residual width the compiler needs for `spec`."""
    return layout_for(spec, compiler)[0].dim


@dataclasses.dataclass(frozen=True)
class CompiledDP:
    """A compiled model: its blocks (`handset`), the token and position maps, and generation."""

    spec: DPSpec
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

    def generate(self, *inputs: np.ndarray, dtype: str = "float64", mode: str = "recompute", **forms) -> np.ndarray:
        """The whole sequence [count, L, width] for the spec's inputs (GridDP: a [count, N],
        b [count, M]): the prompt, then every later token generated from the ones before it and
        rounded.

        `mode` "recompute": each step runs the full prefix through the blocks (the kernel form
        chosen by `forms`, the mixer's `form` and `chunk_size`); "decode": the prompt in one
        prefill, then one `Block.step` per token with the kernels' decoding states (`forms` as
        for recompute)."""
        if mode not in MODES:
            raise ValueError(f"generate: mode {mode!r} is not one of {', '.join(MODES)}")
        spec, layout = self.spec, self.handset.layout
        P, L = spec.prompt_len, spec.length
        prompts = np.stack([spec.prompt(*one) for one in zip(*inputs)])
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


def compile_dp(spec: DPSpec, compiler: str, eps: float = EPS) -> CompiledDP:
    """Hand-set weights of a jaxdp model of kind `compiler` (`ALL_COMPILERS`) that generates the
    CoT of `spec` for every input: the stages of the module docstring, in order."""
    c = compilers.get(compiler)
    layout, head_size = layout_for(spec, compiler)
    stages = [
        Stage({}, [gelu(spec.next_state(layout)), *c.first_parts(spec, layout, eps)]),
        Stage({}, [gelu(target_net(spec, layout, c.squares))]),
        *c.fetch_stages(spec, layout, eps),
        *(Stage({}, [gelu(net)]) for net in spec.transition(layout, got_map(spec))),
    ]
    return _assemble(spec, c, layout, head_size, _fuse(stages), eps)


def _fuse(stages: list[Stage]) -> list[Stage]:
    """Each stage with heads and no MLP merged into the next, when that one has no heads."""
    out: list[Stage] = []
    for stage in stages:
        if out and out[-1].heads and not out[-1].parts and not stage.heads:
            stage = Stage(out.pop().heads, stage.parts)
        out.append(stage)
    return out


def _assemble(spec: DPSpec, c: Compiler, layout: Layout, head_size: int, stages: list[Stage], eps: float) -> CompiledDP:
    """The blocks' parameters, the config, the token map and the positional features."""
    H, L = layout.dim // head_size, spec.length
    hidden = max(sum(p[0].mlp.hidden for p in stage.parts) for stage in stages)
    cfg = construction_config(layout, hidden, mixer=c.mixer, num_heads=H, max_len=L, options=c.options(spec, H, eps))
    mixer = c.mixer_params(spec, layout.dim, H, eps)
    blocks = tuple(
        {
            **block_params(
                attention_params(layout, H, stage.heads),
                ffn_params(layout, cfg.hidden_dim, [(m.mlp, r, w) for m, r, w in stage.parts]),
            ),
            **mixer,
        }
        for stage in stages
    )
    token_map = np.zeros((spec.width, layout.dim))
    token_map[np.arange(spec.width), layout.indices([n for n, _ in spec.token_layout()])] = 1.0
    k = np.arange(1, L + 1, dtype=np.float64)[:, None]
    positional = layout.embed(one=np.ones_like(k), k=k, **c.positional(spec, k))
    handset = HandSet(
        f"compile[{c.name}]",
        cfg.replace(num_layers=len(blocks)),
        layout,
        blocks,
        eps,
        "ε",
        eps,
        max(float(np.abs(v).max()) for blk in blocks for v in blk.values()),
    )
    return CompiledDP(spec, c.name, handset, c.period(spec), token_map, positional)


def generate_reference(spec: DPSpec, *inputs: Sequence) -> np.ndarray:
    """The exact sequences [count, L, width] (the spec's textbook DP)."""
    return np.stack([spec.tokens(*one) for one in zip(*inputs)])
