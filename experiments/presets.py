"""Protocols for the experiments. `paper` is SPEC §4; `quick` is a reduced protocol meant for one
GPU in under an hour; `tiny` runs on a CPU in minutes (tests, demos), at small sizes."""

from __future__ import annotations

import dataclasses

from jaxdp.tasks import PAPER_SIZES

ALL_DIMS = (32, 64, 128, 256, 512, 1024)


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    train_examples: int
    test_examples: int
    epochs: int
    batch_size: int
    lr: float
    warmup_epochs: float
    eval_examples: int | None
    sizes: dict
    dims: dict
    dropout: float = 0.1
    num_layers: int = 3
    num_heads: int = 4
    data_seed: int = 0
    task_options: dict = dataclasses.field(default_factory=dict)


PRESETS = {
    "paper": Preset(
        name="paper", train_examples=1_000_000, test_examples=100_000, epochs=100, batch_size=512, lr=1e-4,
        warmup_epochs=5, eval_examples=None, sizes=dict(PAPER_SIZES),
        dims={"arithmetic": ALL_DIMS[:5], "lis": ALL_DIMS, "ed": ALL_DIMS, "ed_local": ALL_DIMS},
    ),
    "quick": Preset(
        name="quick", train_examples=50_000, test_examples=2_000, epochs=5, batch_size=256, lr=5e-4,
        warmup_epochs=1, eval_examples=1_000, sizes=dict(PAPER_SIZES),
        dims={name: (32, 64, 128, 256) for name in PAPER_SIZES},
    ),
    "tiny": Preset(
        name="tiny", train_examples=2_000, test_examples=100, epochs=3, batch_size=64, lr=1e-3,
        warmup_epochs=1, eval_examples=50, dropout=0.0,
        sizes={"arithmetic": (2, 3), "lis": (4, 6), "ed": (3, 4), "ed_local": (3, 4)},
        dims={name: (16, 32) for name in PAPER_SIZES},
        task_options={"lis": {"value_range": 16}},
    ),
}  # fmt: skip
