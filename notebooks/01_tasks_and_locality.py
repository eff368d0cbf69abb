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
# # 1 · Tasks and locality
#
# The paper studies chain-of-thought (CoT) solutions of dynamic programs (Section 6.1): the model
# reads a problem, writes every intermediate DP value, then the answer. Its four tasks are in
# `jaxdp.tasks`. This notebook shows one sample of each, the dependencies each CoT token has on
# earlier tokens, and the measured **locality** m (Definition 5.3): the farthest back a CoT token
# reaches for a value it depends on. Sparse and linear models are cheap only when m is small
# (Proposition 5.4).
#
# Set `JAXDP_SMOKE=1` for the quick version the test suite runs.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown

from jaxdp import tasks

SMOKE = os.environ.get("JAXDP_SMOKE") == "1"  # the test suite's quick mode: fewer samples and sizes
rng = np.random.default_rng(0)

# %% [markdown]
# ## One sample of every task
#
# `tasks.get(name, size)` returns a task; `task.sample(rng)` an `Example` whose `prompt` ends with
# the first separator and whose `target` is the CoT, the answer and `<eos>`.


# %%
def code(tokens):
    """Tokens as inline code for a Markdown table (a bare | would end the cell)."""
    return "`" + " ".join(tokens).replace("|", "\\|") + "`"


SMALL = {"arithmetic": 3, "lis": 6, "ed": 3, "ed_local": 3}
samples = {}
for name, size in SMALL.items():
    task = tasks.get(name, size)
    samples[name] = (task, task.sample(rng))
rows = ["| task | prompt | chain of thought → answer | L (max) |", "|---|---|---|---|"]
for name, (task, example) in samples.items():
    rows.append(f"| {name}({task.size}) | {code(example.prompt)} | {code(example.target)} | {task.max_len} |")
Markdown("\n".join(rows))

# %% [markdown]
# * **Arithmetic**: the CoT rewrites the expression, one operator at a time, modulo 11.
# * **LIS**: the CoT holds dp(i), the longest increasing subsequence ending at the i-th number.
# * **ED**: the CoT is the edit-distance table row by row (`,` ends a row).
# * **ED_local**: the same table, but every entry carries the letters it compares, so nothing it
#   needs lies far back.
#
# ## What each CoT token depends on
#
# `task.dependencies(example)` maps each CoT position to the positions its value is a function of
# (h_k and g_j of eq. (9)). Drawn as a matrix, the plain ED format reaches back to the prompt from
# every row; the local format stays in a band near the diagonal.

# %%
fig, axes = plt.subplots(1, 4, figsize=(13, 3.4))
for ax, (name, (task, example)) in zip(axes, samples.items()):
    L = len(example.tokens)
    grid = np.zeros((L, L))
    for p, deps in task.dependencies(example).items():
        grid[p, list(deps)] = 1
    ax.imshow(grid, cmap="Greys", interpolation="nearest")
    ax.set_title(f"{name}({task.size}): m = {tasks.locality(task, [example])}", fontsize=9)
    ax.set_xlabel("depends on position")
axes[0].set_ylabel("CoT position")
fig.tight_layout()

# %% [markdown]
# ## Measured locality at the paper's sizes
#
# m over many samples at each size in `tasks.PAPER_SIZES`, against the sequence length L. For the
# three original tasks m grows with L (the first CoT tokens need the whole prompt); for ED_local it
# is the length of one table row, about 2√L.

# %%
count, sizes_per_task = (3, 2) if SMOKE else (100, 4)
measured = {}
for name, sizes in tasks.PAPER_SIZES.items():
    for size in sizes[:sizes_per_task]:
        task = tasks.get(name, size)
        m = tasks.locality(task, (task.sample(rng) for _ in range(count)))
        measured.setdefault(name, []).append((task.max_len, m))

fig, ax = plt.subplots(figsize=(5.5, 4))
for name, points in measured.items():
    ax.plot(*zip(*points), "o-", label=name)
lengths = [L for points in measured.values() for L, _ in points]
ax.plot([min(lengths), max(lengths)], [min(lengths), max(lengths)], "k:", lw=1, label="m = L")
ax.set(
    xscale="log",
    yscale="log",
    xlabel="sequence length L",
    ylabel="measured locality m",
    title=f"locality over {count} samples per size",
)
ax.legend(fontsize=8)
Markdown("| task | (L, m) |\n|---|---|\n" + "\n".join(f"| {n} | {pts} |" for n, pts in measured.items()))
