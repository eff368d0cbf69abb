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
# # 5 · Theory against practice: how D must grow with L
#
# The paper's claim in one picture, on edit distance ED(n, n):
#
# * **constructions** (`constructions.compile`): the hidden size D each compiled model needs —
#   constant for the standard transformer (Theorem 4.1) and for sparse attention on the local
#   format (Proposition 5.4), ≈ √L for sparse (Theorem B.4) and linear (Theorem B.3) attention;
# * **lower bounds** (`constructions.bounds`): the pigeonhole counts of Theorems B.5, B.6 and C.4,
#   which say no sparse or linear model of that depth and precision can do with less;
# * **practice**: the smallest D at which trained models reach 90% accuracy, from the results of a
#   sweep (`python -m experiments.fig1`) when one is on disk, otherwise from a small CPU sweep
#   bundled with the notebooks.
#
# Set `JAXDP_SMOKE=1` for the quick version the test suite runs.

# %%
import os
from pathlib import Path

from IPython.display import Image, Markdown

from constructions import scaling
from jaxdp.sweeps import collect, figures, tables

SMOKE = os.environ.get("JAXDP_SMOKE") == "1"  # the test suite's quick mode: sizes up to n = 60
REPO = Path(scaling.__file__).resolve().parents[1]  # the checkout (jaxdp is installed editable)
COMMITTED = REPO / "benchmarks" / "results"
BUNDLED = next(
    p for p in (COMMITTED / "study" / "fig1" / "results.csv", COMMITTED / "cpu" / "fig1" / "results.csv") if p.exists()
)  # the committed study (else the 2026-12-02 CPU study)

# %% [markdown]
# ## Trained models
#
# The first `runs/fig1/<preset>/results.csv` found (preset paper, gpu, study, cpu, then tiny;
# here or in the checkout), else the committed study: `bash experiments/study.sh`, LIS from
# L = 9 towards the paper's smallest size with five mixers on 2 CPU cores, min D searched
# (`benchmarks/RESULTS.md`, "The study"). It shows the method and how the min D moves with L at
# these sizes, not the paper's numbers at its own.

# %%
results = scaling.find_results(Path.cwd(), Path.cwd().parent, REPO) or BUNDLED
rows = collect.read_csv(results)
print(f"trained results: {results} ({len(rows)} runs)")
Image(figures.heatmaps(rows, Path("runs/notebook-05/accuracy.png"), title="trained models: final-answer accuracy (%)"))

# %%
Markdown(tables.scaling_table(rows))

# %% [markdown]
# ## D against L: constructions, lower bounds and training on one plot
#
# Exponents in the legend are log-log slopes, fitted for L ≥ 1000 where the √L terms dominate the
# constructions' constant parts (scratch space, state, flags). The trained points are ED's when
# the results hold ED, else those of the first task they hold: the constructions drawn are ED's,
# while the bounds B.5 and B.6 hold for any DP whose inputs number 2^Θ(L).

# %%
task = "ed" if any(r["task"] == "ed" for r in rows) else rows[0]["task"]
table = scaling.rows(scaling.sizes(60 if SMOKE else 400))
fitted = scaling.fits(table, fit_from=1000)
Image(scaling.plot(table, fitted, scaling.empirical(results, task), Path("runs/notebook-05/scaling.png")))

# %%
Markdown(scaling.table_text(table, fitted))

# %% [markdown]
# Reading the plot: the standard and local constructions stay flat; sparse and linear grow with
# slope ≈ ½ (the sparse fit sits lower because B is a power of two and D has a constant part), and
# the lower bounds B.5 and B.6 grow nearly as fast — so for ED's plain format, efficient attention
# does not save the hidden size it would need. The "ED family" curve is the weaker bound that ED's
# own input family gives (L^¼), since ED's L grows like n². Trained models' smallest D is shown
# where a sweep found one. For the paper's protocol, run `python -m experiments.fig1 --preset paper`
# (a GPU job) and rerun this notebook: it picks up `runs/fig1/paper/results.csv`.
