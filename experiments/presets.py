"""Presets: a name, one `Protocol`, and the grid of sizes and hidden sizes it runs.

* `paper`: the paper's protocol (§6.1), which is just `Protocol()`, the defaults of
  `jaxdp.protocol` (1M + 100k examples, 100 epochs, batch 512, lr 1e-4, 5 warm-up epochs,
  dropout 0.1), at the paper's sizes and D grids; 1,000 validation examples (the paper has no
  validation split: ours chooses learning rates and stops runs, never the test set).
* `quick`: a reduced protocol meant for one GPU in about an hour, at the paper's sizes; its D grid
  reaches 512 (Table 2's linear cells need it).
* `tiny`: a CPU-minutes protocol at small sizes (tests, demos); the default without a GPU.
* `cpu`: the largest study a 2-core CPU trains in about 2 hours (`experiments/cpu_study.sh`,
  committed in benchmarks/results/cpu/). Figure 1 on LIS only (no locality, the paper's hardest
  case) at N = 3, 6, 10, 17, so L spans 9..37 (a factor 4), with every paper mixer plus window
  and retention, D in 16, 32, 64; Figure 2 on ED_local and ED at n = 2, 3 with the paper's
  pair, sparse (both windows) and linear, at D in 16, 32 (its cells are up to 2.3x longer). 16k examples, 12 epochs, batch 64, lr 3e-3 (3e-3 trains LIS(13)
  to 0.89 where 1e-3 gives 0.65, measured), no dropout, LIS values from 50 numbers.

`quick` and `paper` are GPU jobs: on a CPU the scripts print their estimated cost and start only
with ``--yes``.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

from jaxdp.protocol import Protocol, TrainConfig
from jaxdp.tasks import PAPER_SIZES

ALL_DIMS = (32, 64, 128, 256, 512, 1024)


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    protocol: Protocol
    sizes: Mapping[str, tuple[int, ...]]
    dims: Mapping[str, tuple[int, ...]]
    gpu_scale: bool = False  # on a CPU: print the estimated cost and start only with --yes
    # script name (fig1, fig2, ...) -> the tasks / mixers it runs when --tasks / --models is not
    # given; a script the preset does not name runs its own defaults
    tasks: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    models: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)


PRESETS = {
    "paper": Preset(
        "paper", Protocol(), sizes=dict(PAPER_SIZES), gpu_scale=True,
        # Arithmetic stops at 512: "all the models have already performed well in 512" (§6.1)
        dims={"arithmetic": ALL_DIMS[:5], "lis": ALL_DIMS, "ed": ALL_DIMS, "ed_local": ALL_DIMS},
    ),
    "quick": Preset(
        "quick",
        Protocol(train=TrainConfig(epochs=5, batch_size=256, lr=5e-4, warmup_epochs=1, eval_examples=1_000),
                 train_examples=50_000, test_examples=2_000, valid_examples=1_000),
        sizes=dict(PAPER_SIZES), dims={name: ALL_DIMS[:5] for name in PAPER_SIZES}, gpu_scale=True,
    ),
    "tiny": Preset(
        "tiny",
        Protocol(train=TrainConfig(epochs=3, batch_size=64, lr=1e-3, warmup_epochs=1, eval_examples=50),
                 model={"dropout": 0.0}, train_examples=2_000, test_examples=100, valid_examples=100,
                 task_options={"lis": {"value_range": 16}}),
        sizes={"arithmetic": (2, 3), "lis": (4, 6), "ed": (3, 4), "ed_local": (3, 4)},
        dims={name: (16, 32) for name in PAPER_SIZES},
    ),
    "cpu": Preset(
        "cpu",
        Protocol(train=TrainConfig(epochs=12, batch_size=64, lr=3e-3, warmup_epochs=1, eval_examples=500),
                 model={"dropout": 0.0}, train_examples=16_000, test_examples=500, valid_examples=500,
                 task_options={"lis": {"value_range": 50}}),
        sizes={"lis": (3, 6, 10, 17), "ed": (2, 3), "ed_local": (2, 3)},
        dims={"lis": (16, 32, 64), "ed": (16, 32), "ed_local": (16, 32)},  # 2 h: Figure 2 stops at 32
        tasks={"fig1": ("lis",), "fig2": ("ed_local", "ed")},
        models={"fig1": ("standard", "sparse", "linear", "window", "retention"),
                "fig2": ("sparse", "linear")},
    ),
}  # fmt: skip
