"""Presets: a name, one `Protocol`, and the grid of sizes and hidden sizes it runs.

* `paper`: the paper's protocol (§6.1), which is just `Protocol()`, the defaults of
  `jaxdp.training.protocol` (1M + 100k examples, 100 epochs, batch 512, lr 1e-4, 5 warm-up epochs,
  dropout 0.1), at the paper's sizes and D grids; 1,000 validation examples (the paper has no
  validation split: ours chooses learning rates and stops runs, never the test set).
* `study`: the protocol the calibration chose (`experiments.calibrate`, benchmarks/RESULTS.md
  "The study"): a fixed step budget at batch 64, each mixer's own learning rate, the validation
  stopping rule, no dropout, the paper's tasks. Its grid is this machine's study
  (`experiments/study.sh`): Figure 1 on LIS from L = 9 to the paper's smallest size (L = 83),
  Figure 2 with the standard model as control, Table 2 on Arithmetic n = 3..6, D on a geometric
  grid of ratio 1.5 searched from the middle (`jaxdp.sweeps.search`).
* `gpu`: the same protocol at the paper's sizes, D from 16 to 512: the GPU run of the study. Its
  smallest sizes (LIS(40), Arithmetic(6)) are the study's largest, trained on the 2-core CPU.
* `tiny`: a CPU-minutes protocol at small sizes (tests, demos); the default without a GPU.
* `cpu`: the 2026-12-02 CPU study (`experiments/cpu_study.sh`, committed in
  benchmarks/results/cpu/), kept to reproduce it. Figure 1 on LIS only at N = 3, 6, 10, 17
  (L = 9..37), every paper mixer plus window and retention, D in 16, 32, 64; Figure 2 on
  ED_local and ED at n = 2, 3, D in 16, 32. 16k examples, 12 epochs, batch 64, lr 3e-3, no
  dropout, LIS values from 50 numbers (an easier task than the paper's 149).

`gpu` and `paper` are GPU jobs: on a CPU the scripts print their estimated cost and start only
with ``--yes``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from jaxdp.tasks import PAPER_SIZES
from jaxdp.training.protocol import Protocol, TrainConfig

ALL_DIMS = (32, 64, 128, 256, 512, 1024)
#: the study's D grid: geometric with ratio at most 1.5, so a min D is known within a factor 1.5
STUDY_DIMS = (8, 12, 16, 24, 32, 48, 64, 96, 128)
GPU_DIMS = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
#: the study's step budget at batch 64: `experiments.calibrate` found 8,000 steps too few (twice
#: the steps took linear at D 32 from 0.775 to 0.886 and sparse at D 64 from 0.860 to 0.892 on
#: LIS(17); benchmarks/RESULTS.md, "Calibration")
STUDY_STEPS, STUDY_BATCH = 16_000, 64
STUDY_MIXERS = ("standard", "sparse", "linear", "mamba2", "gated_deltanet")
#: each mixer's learning rate: the best by validation score in `experiments.calibrate` for
#: standard, sparse, linear and mamba2 (benchmarks/RESULTS.md, "Calibration"); gated_deltanet
#: takes the same until its own calibration runs report
STUDY_LRS = {name: (1e-2,) for name in STUDY_MIXERS}


def study_protocol(train_examples: int = 256_000, steps: int = STUDY_STEPS) -> Protocol:
    """The study's protocol with `steps` training steps over `train_examples` examples (epochs
    = steps · batch / examples, which must divide), warm-up 1/32 of the run, the validation
    stopping rule (`jaxdp.training.stopping`) checked every 500 steps on 512 examples with a plateau of 8
    checks (4,000 steps: with 5 checks of 256, one lucky check stopped a run that was still
    climbing, measured), no dropout, 1,000 validation and
    1,000 test examples, the paper's task (the benchmark's LIS value range)."""
    epochs, rest = divmod(steps * STUDY_BATCH, train_examples)
    if rest or not epochs:
        raise ValueError(f"train_examples: {train_examples} does not divide {steps} steps x batch {STUDY_BATCH}")
    train = TrainConfig(
        epochs=epochs,
        batch_size=STUDY_BATCH,
        lr=1e-2,
        warmup_epochs=epochs / 32,
        check_every=500,
        check_examples=512,
        plateau_checks=8,
    )
    return Protocol(
        train=train, model={"dropout": 0.0}, train_examples=train_examples, test_examples=1_000, valid_examples=1_000
    )


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    protocol: Protocol
    sizes: Mapping[str, tuple[int, ...]]
    dims: Mapping[str, tuple[int, ...]]
    gpu_scale: bool = False  # on a CPU: print the estimated cost and start only with --yes
    # script name (fig1, fig2, ...) -> the tasks / mixers it runs when --tasks / --mixers is not
    # given; a script the preset does not name runs its own defaults
    tasks: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    mixers: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    # mixer -> the learning rates its cells train at when --lrs is not given (a calibration's
    # best per mixer); a mixer not named trains at the protocol's lr
    lrs: Mapping[str, tuple[float, ...]] = dataclasses.field(default_factory=dict)
    search_first: str = "largest"  # where --search starts (`jaxdp.sweeps.search.FIRSTS`)


PRESETS = {
    "paper": Preset(
        "paper",
        Protocol(),
        sizes=dict(PAPER_SIZES),
        gpu_scale=True,
        # Arithmetic stops at 512: "all the models have already performed well in 512" (§6.1)
        dims={"arithmetic": ALL_DIMS[:5], "lis": ALL_DIMS, "ed": ALL_DIMS, "ed_local": ALL_DIMS},
    ),
    "gpu": Preset(
        # the study's calibrated protocol at the paper's sizes, D up to 512 (Table 2's linear
        # cells need it); its smallest sizes are the study's largest, trained on this CPU
        "gpu",
        study_protocol(),
        sizes=dict(PAPER_SIZES),
        dims={name: GPU_DIMS for name in PAPER_SIZES},
        gpu_scale=True,
        tasks={"fig2": ("ed_local", "ed"), "scaling": ("lis",), "mixers": ("lis",)},
        mixers={"fig1": STUDY_MIXERS[:3], "fig2": ("standard", "sparse", "linear"), "mixers": STUDY_MIXERS},
        lrs=STUDY_LRS,
        search_first="middle",
    ),
    "tiny": Preset(
        "tiny",
        Protocol(
            train=TrainConfig(epochs=3, batch_size=64, lr=1e-3, warmup_epochs=1, eval_examples=50),
            model={"dropout": 0.0},
            train_examples=2_000,
            test_examples=100,
            valid_examples=100,
            task_options={"lis": {"value_range": 16}},
        ),
        sizes={"arithmetic": (2, 3), "lis": (4, 6), "ed": (3, 4), "ed_local": (3, 4)},
        dims={name: (16, 32) for name in PAPER_SIZES},
    ),
    "study": Preset(
        "study",
        study_protocol(),
        # L = 2N + 3 = 9, 15, 23, 37, 53, 83 (the paper's smallest, N = 40); Arithmetic n = 3..6
        # reaches the paper's L = 87; ED and ED_local where the standard model solves ED
        sizes={"lis": (3, 6, 10, 17, 25, 40), "arithmetic": (3, 4, 5, 6), "ed": (2, 3, 4), "ed_local": (2, 3, 4)},
        dims={name: STUDY_DIMS for name in PAPER_SIZES},
        tasks={"fig1": ("lis",), "fig2": ("ed_local", "ed"), "scaling": ("lis",), "mixers": ("lis",)},
        mixers={
            "fig1": STUDY_MIXERS,
            "scaling": STUDY_MIXERS,
            "mixers": STUDY_MIXERS,
            "fig2": ("standard", "sparse", "linear"),
        },
        lrs=STUDY_LRS,
        search_first="middle",
    ),
    "cpu": Preset(
        "cpu",
        Protocol(
            train=TrainConfig(epochs=12, batch_size=64, lr=3e-3, warmup_epochs=1, eval_examples=500),
            model={"dropout": 0.0},
            train_examples=16_000,
            test_examples=500,
            valid_examples=500,
            task_options={"lis": {"value_range": 50}},
        ),
        sizes={"lis": (3, 6, 10, 17), "ed": (2, 3), "ed_local": (2, 3)},
        dims={"lis": (16, 32, 64), "ed": (16, 32), "ed_local": (16, 32)},  # 2 h: Figure 2 stops at 32
        tasks={"fig1": ("lis",), "fig2": ("ed_local", "ed")},
        mixers={"fig1": ("standard", "sparse", "linear", "window", "retention"), "fig2": ("sparse", "linear")},
    ),
}
