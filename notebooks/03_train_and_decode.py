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
# # 3 · Train, decode, compare the three models
#
# The paper's experiment in miniature (Section 6): train the standard, sparse and linear
# transformers on one small task, decode the test set greedily and read off final-answer
# accuracy. Everything goes through the library's sweep (`jaxdp.sweeps`): each run lives in its own
# folder under `runs/` next to this notebook, so rerunning the notebook skips finished runs and an
# interrupted run resumes from its checkpoint.
#
# Set `JAXDP_SMOKE=1` for the quick version the test suite runs (it trains for a few steps only, so
# its accuracies are near chance). The full version takes about 3 minutes on 2 CPU cores.

# %%
import json
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
from IPython.display import Image, Markdown

from jaxdp.evaluation import decode
from jaxdp.sweeps import collect, figures, grids, runner, tables
from jaxdp.tasks import EOS
from jaxdp.tasks.dataset import load
from jaxdp.training.protocol import Protocol, TrainConfig
from jaxdp.training.run import restore_model

SMOKE = os.environ.get("JAXDP_SMOKE") == "1"  # the test suite's quick mode: a few training steps
RUNS, DATA = Path("runs/notebook-03" + ("-smoke" if SMOKE else "")), Path("data")

# %% [markdown]
# ## The grid
#
# LIS with N = 6 numbers from a range of 16 (L = 16), three layers (one in smoke mode) and four
# heads as in the paper, hidden size D from the grid below. A `Protocol` holds what every cell
# shares (fields not given keep the paper's defaults); each run's folder is named by a digest of
# its whole protocol, so changing any setting here trains new runs instead of reusing old ones.

# %%
task_name, size, options = "lis", 6, {"value_range": 16}
dims = (16,) if SMOKE else (16, 64)
cells = grids.grid({task_name: (size,)}, ("standard", "sparse", "linear"), {task_name: dims})
protocol = Protocol(
    train_examples=640 if SMOKE else 4000,
    test_examples=40 if SMOKE else 300,
    model={"num_layers": 1 if SMOKE else 3, "dropout": 0.0},
    train=TrainConfig(epochs=1 if SMOKE else 15, batch_size=64, lr=1e-3, warmup_epochs=1, log_every=5),
    task_options={task_name: options},
)
runner.run(RUNS, cells, protocol, data_root=DATA, progress=not SMOKE)
rows = collect.collect(RUNS, cells, protocol)
Markdown(tables.accuracy_table(rows) + "\n\n" + tables.accuracy_table(rows, "teacher_forced_exact"))

# %% [markdown]
# Training loss of each run, read from its `metrics.jsonl`:

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
for cell in cells:
    folder = RUNS / grids.plan(cell, protocol).path
    log = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    log = [r for r in log if "loss" in r]  # not the eval_* lines of --eval-every
    ax.plot([r["step"] for r in log], [r["loss"] for r in log], label=f"{cell.mixer}, D = {cell.dim}")
ax.set(xlabel="step", ylabel="next-token NLL", yscale="log", title=f"{task_name}({size}): training loss")
ax.legend(fontsize=8)

# %% [markdown]
# ## Greedy decoding, token by token
#
# A trained model writes the CoT one token at a time from its decoding state: one `prefill` over
# the prompt, then one `decode_step` per token (a KV cache for standard and sparse attention, the
# running (S, z) of Lemma A.8 for linear). Here is the largest standard model on the first test
# example, with the probability it gave each token.

# %%
cell = next(c for c in reversed(cells) if c.mixer == "standard")
model, _ = restore_model(RUNS / grids.plan(cell, protocol).path)
task = protocol.task(cell.task, cell.size)
test = load(grids.dataset_dir(DATA, task, protocol) / "test.npz")
example = test.example(0)

prompt = jnp.asarray(task.encode(example.prompt), jnp.int32)[None]
state = model.init_decode_state(1, task.max_len)
logits, state = model.prefill(state, prompt)
logits, written = logits[0, -1], []
for reference in example.target:
    probs = jax.nn.softmax(logits)
    token = int(jnp.argmax(probs))
    written.append((task.vocab[token], float(probs[token]), reference))
    if task.vocab[token] == EOS:
        break
    logits, state = model.decode_step(state, jnp.asarray([token]))
    logits = logits[0]

print("prompt:", " ".join(example.prompt))
Markdown(
    "| step | token | probability | reference |\n|---|---|---|---|\n"
    + "\n".join(f"| {i} | `{t}` | {p:.2f} | `{r}` |" for i, (t, p, r) in enumerate(written))
)

# %% [markdown]
# The same decoding, batched and jitted (`jaxdp.evaluation.decode.generate`, a `lax.while_loop` over steps),
# should write the same tokens (the tests check this on random models; an untrained model's
# near-ties may rarely tip the other way between the eager and the jitted program):

# %%
batched = decode.generate(model, test.tokens[:1], test.prompt_len[:1], eos_id=task.vocab.index(EOS))
generated = task.decode(batched[0, len(example.prompt) : len(example.prompt) + len(written)])
print(" ".join(generated), "| same as above:", generated == [t for t, _, _ in written])

# %% [markdown]
# ## The accuracy grid
#
# Final-answer accuracy of greedy decoding on the test set, per model and D — the layout of the
# paper's Figure 1, where the gap between the standard and the efficient models widens as L
# grows (notebook 5 draws the smallest D per L; `python -m experiments.fig1` runs the full grid).

# %%
Image(figures.heatmaps(rows, RUNS / "accuracy.png", title=f"{task_name}({size}): final-answer accuracy (%)"))
