"""The README's first command: the whole pipeline on small defaults, about 5 minutes on 2 CPU cores.

Small datasets of every task (one example each), the measured locality of every task at the
paper's sizes, the three models trained on LIS(6) at two hidden sizes and greedy-decoded (both
metrics), the accuracy heatmap, and one proof check (Lemma A.12's hand-set sparse COPY).

    python -m experiments.demo
"""

from __future__ import annotations

import sys
from pathlib import Path

from experiments.presets import Preset
from jaxdp import tasks
from jaxdp.args import Parser
from jaxdp.cli import run_command
from jaxdp.runtime.devices import use_cpu_cores_for_command
from jaxdp.sweeps import collect, figures, grids, runner, tables
from jaxdp.tasks.builder import build_to_dir
from jaxdp.training.protocol import Protocol, TrainConfig

DATA_SIZES = {"arithmetic": 4, "lis": 8, "ed": 4, "ed_local": 4}
PAPER_MIXERS = ("standard", "sparse", "linear")
#: about 3 minutes for the 6 runs on 2 CPU cores
DEMO = Preset(
    "demo",
    Protocol(
        train=TrainConfig(epochs=15, batch_size=64, lr=1e-3, warmup_epochs=1),
        model={"dropout": 0.0},
        train_examples=4000,
        test_examples=300,
        task_options={"lis": {"value_range": 16}},
    ),
    sizes={"lis": (6,)},
    dims={"lis": (16, 64)},
)


#: what the demo's grid shows and what it does not (printed under it)
SHORT_RUNS = (
    "These are short runs (15 epochs of 4,000 examples, one seed, 300 test examples): the gaps between the "
    "models here measure how fast each learns, not what it can represent. Under the study's longer protocol "
    "(tuned learning rates, 16,000 steps) they have so far separated only at the longest length it has "
    'trained, L = 37: see benchmarks/results/study/ and docs/experiments.md, "The study".'
)


def show_datasets(data_root: Path, seed: int) -> None:
    for name, size in DATA_SIZES.items():
        task = tasks.get(name, size)
        train, test, _ = build_to_dir(task, data_root / f"{name}-{size}", 2000, 200, seed, progress=False)
        example = test.example(0)  # the test split holds full-size examples only
        print(f"{task}: {len(train)} train / {len(test)} test examples, max_len {task.max_len}")
        print(f"  prompt: {' '.join(example.prompt)}\n  target: {' '.join(example.target)}")


def train_grid(runs: Path, data_root: Path, progress: bool = True) -> tuple[list[dict], Path]:
    """The three models on LIS(6) at D = 16 and 64: train, decode, collect, draw."""
    cells = grids.grid(DEMO.sizes, PAPER_MIXERS, DEMO.dims)
    runner.run(runs, cells, DEMO.protocol, data_root=data_root, progress=progress)
    rows = collect.collect(runs, cells, DEMO.protocol)
    collect.write_csv(rows, runs / "results.csv")
    figure = figures.heatmaps(rows, runs / "demo.png", title="demo: LIS(6), short runs, final-answer accuracy (%)")
    return rows, figure


def check_one_proof() -> None:
    """Lemma A.12 with hand-set weights in jaxdp's own sparse blocks (constructions package)."""
    import jax

    from constructions.checks import CHECKS

    check = CHECKS["copy_sparse"]
    with jax.enable_x64(True):
        m = check.measure(64)
    print(
        f"\nChecking a proof: Lemma {m.lemma} ({check.claim}) with hand-set weights in "
        f"jaxdp's sparse blocks, L = {m.size}, float64: largest error {m.max_error:.1e} "
        f"<= eps = {m.eps:.0e}: {'holds' if m.ok else 'FAILS'} (all lemmas: python -m constructions.report)"
    )


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="python -m experiments.demo", description=__doc__)
    p.add_argument("--out", type=Path, default=Path("data/demo"), help="datasets (default: data/demo)")
    p.add_argument("--runs", type=Path, default=Path("runs/demo"), help="training runs (default: runs/demo)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed (default: 0)")
    args = p.parse_args(argv)
    return run_command(lambda: _demo(args))


def _demo(args) -> str:
    show_datasets(args.out, args.seed)
    print("\nMeasured locality m (Definition 5.3) at the paper's sizes:")
    print(tasks.locality_table(samples=50, seed=args.seed))
    protocol = DEMO.protocol
    print(
        f"\nTraining the three models on lis(6) at D = {DEMO.dims['lis']} ({protocol.train_examples} examples, "
        f"{protocol.train.epochs} epochs each), then greedy decoding {protocol.test_examples} test examples:"
    )
    rows, figure = train_grid(args.runs, args.out)
    print(tables.accuracy_table(rows) + "\n\n" + tables.accuracy_table(rows, "teacher_forced_exact"))
    print(f"\n{SHORT_RUNS}")
    check_one_proof()
    return f"demo: datasets in {args.out}, runs and results.csv in {args.runs}, heatmap {figure}"


if __name__ == "__main__":
    use_cpu_cores_for_command("python -m experiments.demo")  # one jax device per CPU core (jaxdp.runtime.devices)
    sys.exit(main())
