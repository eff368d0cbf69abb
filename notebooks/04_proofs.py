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
# # 4 · The proofs, run
#
# The paper's upper bounds are constructions: hand-set weights that make a transformer compute a
# given function (Appendix A's lemmas) or solve a whole DP (Theorems 4.1, B.3, B.4). The
# `constructions` package writes those weights into the same `jaxdp.models` blocks the experiments
# train, and measures the error against what each lemma promises. This notebook looks inside:
# a lemma's error as its scale constant moves, the attention maps of the COPY and AGG heads, the
# float formats each lemma survives, and a compiled model writing an edit-distance table.
#
# Set `JAXDP_SMOKE=1` for the quick version the test suite runs.

# %%
import os

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown

from constructions import report
from constructions.checks import CHECKS
from constructions.compile import compile_dp
from constructions.dp import edit_distance

jax.config.update("jax_enable_x64", True)  # the checks run in float64 unless told otherwise
SMOKE = os.environ.get("JAXDP_SMOKE") == "1"  # the test suite's quick mode: fewer points and checks
rng = np.random.default_rng(0)

# %% [markdown]
# ## A lemma's error against its scale constant
#
# Lemma A.1 multiplies two numbers in [−M, M] with four GeLU units: with weights 1/κ the GeLU's
# Taylor series leaves an error (2/3)M⁴/κ², so a larger κ is more exact — on paper. The output
# weights grow like κ², and finite precision cancels the rest: the measured error follows the bound
# down until rounding takes over, far sooner in float32 than in float64.

# %%
check, M = CHECKS["product"], 4
kappas = np.geomspace(2 * M, 1e6, 6 if SMOKE else 16)
measured = {dt: [check.measure(M, scale=k, dtype=dt) for k in kappas] for dt in ("float64", "float32")}
fig, ax = plt.subplots(figsize=(5.5, 3.8))
for dt, runs in measured.items():
    ax.plot(kappas, [max(m.max_error, 1e-17) for m in runs], "o-", ms=3, label=f"measured, {dt}")
ax.plot(kappas, [m.error_bound for m in measured["float64"]], "k--", label="bound (2/3)M⁴/κ²")
ax.set(xscale="log", yscale="log", xlabel="κ", ylabel="largest |error|", title=f"Lemma A.1, M = {M}")
ax.legend(fontsize=8)

# %% [markdown]
# ## Attention maps of the hand-set heads
#
# **COPY** (Lemma A.11): each query copies the value of the best-rated earlier position whose key
# matches it; with the scale λ from the lemma the softmax is all but one-hot. **AGG** (Lemma A.9):
# one *linear* head averages the block of m positions that the query names. The maps are
# `Attention.weights` of the real jaxdp blocks holding the hand-set weights.

# %%
maps = {}
for name, size in (("copy_softmax", 24), ("agg", 5)):
    hand = CHECKS[name].build(size, CHECKS[name].eps, None)
    x, _ = CHECKS[name].sample(hand, size, rng)
    attention = hand.modules()[0].attn
    with jax.default_matmul_precision("highest"):
        maps[f"{hand.lemma} {name}"] = np.asarray(attention.weights(jnp.asarray(x)))[0, 0]

fig, axes = plt.subplots(1, 2, figsize=(9, 4))
for ax, (title, w) in zip(axes, maps.items()):
    image = ax.imshow(w, cmap="viridis", interpolation="nearest", vmin=0, vmax=1)
    ax.set(title=title, xlabel="key position", ylabel="query position")
fig.colorbar(image, ax=axes, shrink=0.8, label="attention weight")

# %% [markdown]
# ## Which float format each lemma survives
#
# `constructions.report` measures every lemma in float64, float32 and bfloat16 as its problem size
# grows (here only the two smallest sizes; `python -m constructions.report` runs them all). ✗ marks
# an error above ε.

# %%
names = ["product", "select"] if SMOKE else list(CHECKS)  # all of them: about 3 minutes on 2 CPU cores
measurements = report.run(names, quick=True, progress=False)
Markdown(report.table(measurements))

# %% [markdown]
# ## A compiled model solving edit distance
#
# `compile_dp(spec, compiler)` turns a DP spec into a stack of hand-set jaxdp blocks. The standard
# compiler is Theorem 4.1's construction (one COPY head per value the next DP state needs, constant
# D); `sparse` and `linear` are Theorems B.4 and B.3 (D ≈ √L). `generate(mode="decode")` writes
# the whole chain of thought token by token from the prompt — one prefill, then one `Block.step`
# per token with the kernels' decoding states — and rounds each output (the regression setting).

# %%
spec = edit_distance(3, 4)
a, b = spec.random_inputs(rng, 1)
compilers = ("standard",) if SMOKE else ("standard", "sparse", "linear")
compiled = {c: compile_dp(spec, c) for c in compilers}
written = {c: model.generate(a, b, mode="decode")[0] for c, model in compiled.items()}
reference = spec.tokens(a[0], b[0])
print(f"{spec.name}: a = {a[0]}, b = {b[0]}, L = {spec.length}, answer {spec.answer(a[0], b[0])}")
Markdown(
    "| compiler | D | layers | heads | every token as the reference |\n|---|---|---|---|---|\n"
    + "\n".join(
        f"| {c} | {m.config.dim} | {m.config.num_layers} | {m.config.num_heads} "
        f"| {np.array_equal(written[c], reference)} |"
        for c, m in compiled.items()
    )
)

# %% [markdown]
# The table the standard model wrote, read off its CoT tokens (state (i, j) and value), next to
# the textbook table:

# %%
tokens = written["standard"][spec.prompt_len : -1]
table = np.zeros((spec.N, spec.M), int)
for t in tokens:  # a CoT token is (i, j, i², j², dp(i, j), end)
    table[int(t[0]) - 1, int(t[1]) - 1] = int(t[4])
print("written by the model:\n", table)
print("textbook DP:\n", spec.table(a[0], b[0])[1:, 1:])
