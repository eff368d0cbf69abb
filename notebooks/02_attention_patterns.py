# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 2 · Attention patterns and their cost
#
# jaxdp has one decoder and three ways of mixing values (`jaxdp.models.mixers`): causal softmax
# (eq. (3)–(4)), sparse softmax over the set I_i of eq. (6), and linear attention (eq. (7)–(8)).
# This notebook draws the sparse pattern, checks that the linear kernel's three forms agree, and
# compares the kernels' cost as L grows, counted (`jaxdp.models.flops`) and timed.
#
# Set `JAXDP_SMOKE=1` for the quick version the test suite runs.

# %%
import os
import statistics
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown

from jaxdp.models import ModelConfig, causal_mask, default_block_size, flops, sparse_mask
from jaxdp.models.mixers.linear import linear_chunked, linear_quadratic, linear_scan, linear_weights
from jaxdp.models.mixers.softmax import softmax_weights
from jaxdp.models.mixers.sparse import sparse_blocked
from jaxdp.models.mixers.standard import standard

SMOKE = os.environ.get("JAXDP_SMOKE") == "1"  # the test suite's quick mode: shorter sequences

# %% [markdown]
# ## The sparse pattern of eq. (6)
#
# Query i sees the last kB positions (its local window) and the last c positions of every block
# (the summary or global tokens). Below k = c = 1; the paper's rule for B is 2^⌊log₂ √L⌋
# (`default_block_size`). Each row has O(B + L/B) keys, O(√L) for B ≈ √L.

# %%
shapes = [(16, 4), (32, 4), (48, default_block_size(48))]
fig, axes = plt.subplots(1, len(shapes) + 1, figsize=(13, 3.4))
axes[0].imshow(causal_mask(16), cmap="Blues", interpolation="nearest")
axes[0].set_title("standard: causal, L = 16", fontsize=9)
for ax, (L, B) in zip(axes[1:], shapes):
    mask = sparse_mask(L, B, 1, 1)
    ax.imshow(mask, cmap="Blues", interpolation="nearest")
    ax.set_title(f"sparse: L = {L}, B = {B}, {mask.sum(1).max()} keys at most", fontsize=9)
for ax in axes:
    ax.set_xlabel("key position")
axes[0].set_ylabel("query position")
fig.tight_layout()

# %% [markdown]
# ## Linear attention three ways
#
# eq. (8), o_i = φ(q_i)ᵀ S_i / φ(q_i)ᵀ z_i, can be computed as an L × L masked product
# (`linear_quadratic`, the reference), chunk by chunk with the running state between chunks
# (`linear_chunked`, the fast training form), or as the recurrence of Lemma A.8 (`linear_scan`,
# what decoding does). On random inputs they agree to rounding.

# %%
rng = np.random.default_rng(0)
batch, L, H, K = 2, 96 if SMOKE else 512, 4, 16
q, k, v = (jnp.asarray(rng.normal(size=(batch, L, H, K)), jnp.float32) for _ in range(3))
forms = {
    "quadratic": linear_quadratic(q, k, v),
    "chunked (C = 32)": linear_chunked(q, k, v, chunk_size=32),
    "scan": linear_scan(q, k, v),
}
reference = np.asarray(forms["quadratic"])
Markdown(
    "| form | largest \\|difference\\| from quadratic (float32) |\n|---|---|\n"
    + "\n".join(f"| {name} | {np.abs(np.asarray(o) - reference).max():.1e} |" for name, o in forms.items())
)

# %% [markdown]
# The matrix those forms never build, `linear_weights`, next to softmax attention's for the same
# q and k: the linear kernel cannot make its weights as peaked as softmax can.

# %%
fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
n = 32
for ax, (title, w) in zip(
    axes,
    [
        ("softmax (standard)", softmax_weights(q[:, :n], k[:, :n], causal_mask(n))),
        ("linear, eq. (8)", linear_weights(q[:, :n], k[:, :n])),
    ],
):
    ax.imshow(np.asarray(w[0, 0]), cmap="magma", interpolation="nearest")
    ax.set(title=f"{title}: head 0", xlabel="key position", ylabel="query position")
fig.tight_layout()

# %% [markdown]
# ## Cost against L
#
# Counted: the attention FLOPs (scores and mixing, all layers) of one sequence from
# `flops.breakdown`, for the paper's model (3 layers, 4 heads) at D = 256 with the fast forms.
# Standard grows like L², sparse like L^1.5 (B ≈ √L), linear like L.

# %%
CONFIGS = {
    "standard": dict(mixer="standard"),
    "sparse (blocked)": dict(mixer="sparse", options={"form": "blocked"}),
    "linear (chunked)": dict(mixer="linear", options={"form": "chunked", "chunk_size": 64}),
}
lengths = [2**p for p in range(6, 15)]
counted = {
    name: [flops.breakdown(ModelConfig(dim=256, max_len=L, vocab_size=20, **c), L).attention for L in lengths]
    for name, c in CONFIGS.items()
}

# %% [markdown]
# Timed: the jitted attention mixing alone (given q, k, v; forward), median of a few runs after a
# warm-up, on whatever device jax has. Times on a shared CPU are rough; the slopes are the point.

# %%
KERNELS = {
    "standard": standard,
    "sparse (blocked)": lambda q, k, v: sparse_blocked(
        q, k, v, block_size=default_block_size(q.shape[1]), local_blocks=1, global_tokens=1
    ),
    "linear (chunked)": lambda q, k, v: linear_chunked(q, k, v, chunk_size=64),
}


def seconds(fn, *args, repeats=3):
    """Median wall time of a jitted call, after one call to compile."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


timed_lengths = [128, 256, 512] if SMOKE else [256, 512, 1024, 2048, 4096]
timed = {name: [] for name in KERNELS}
for L in timed_lengths:
    q, k, v = (jnp.asarray(rng.normal(size=(1, L, 4, 64)), jnp.float32) for _ in range(3))
    for name, fn in KERNELS.items():
        timed[name].append(seconds(jax.jit(fn), q, k, v))

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for name in CONFIGS:
    axes[0].plot(lengths, counted[name], "o-", ms=3, label=name)
    axes[1].plot(timed_lengths, timed[name], "o-", ms=3, label=name)
axes[0].set(ylabel="attention FLOPs per sequence", title="counted (jaxdp.models.flops)")
axes[1].set(ylabel="seconds", title=f"timed on {jax.devices()[0].platform}")
for ax in axes:
    ax.set_xscale("log", base=2), ax.set_yscale("log"), ax.set_xlabel("L")
    ax.legend(fontsize=8)
fig.tight_layout()
