"""Presets: a name, one `Protocol`, and the grid of sizes and hidden sizes it runs.

* `paper`: the paper's protocol (§6.1), which is just `Protocol()`, the defaults of
  `jaxdp.protocol` (1M + 100k examples, 100 epochs, batch 512, lr 1e-4, 5 warm-up epochs,
  dropout 0.1), at the paper's sizes and D grids.
* `quick`: a reduced protocol meant for one GPU in about an hour, at the paper's sizes; its D grid
  reaches 512 (Table 2's linear cells need it).
* `tiny`: a CPU-minutes protocol at small sizes (tests, demos); the default without a GPU.

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


PRESETS = {
    "paper": Preset(
        "paper", Protocol(), sizes=dict(PAPER_SIZES), gpu_scale=True,
        # Arithmetic stops at 512: "all the models have already performed well in 512" (§6.1)
        dims={"arithmetic": ALL_DIMS[:5], "lis": ALL_DIMS, "ed": ALL_DIMS, "ed_local": ALL_DIMS},
    ),
    "quick": Preset(
        "quick",
        Protocol(train=TrainConfig(epochs=5, batch_size=256, lr=5e-4, warmup_epochs=1, eval_examples=1_000),
                 train_examples=50_000, test_examples=2_000),
        sizes=dict(PAPER_SIZES), dims={name: ALL_DIMS[:5] for name in PAPER_SIZES}, gpu_scale=True,
    ),
    "tiny": Preset(
        "tiny",
        Protocol(train=TrainConfig(epochs=3, batch_size=64, lr=1e-3, warmup_epochs=1, eval_examples=50),
                 model={"dropout": 0.0}, train_examples=2_000, test_examples=100,
                 task_options={"lis": {"value_range": 16}}),
        sizes={"arithmetic": (2, 3), "lis": (4, 6), "ed": (3, 4), "ed_local": (3, 4)},
        dims={name: (16, 32) for name in PAPER_SIZES},
    ),
}  # fmt: skip
