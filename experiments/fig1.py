"""Figure 1: accuracy heatmaps (size × D) of the three models on Arithmetic, ED and LIS.

python -m experiments.fig1                             # the tiny grid on a CPU (gpu on a GPU)
python -m experiments.fig1 --preset gpu                # the paper's sizes on one GPU (packed)
python -m experiments.fig1 --preset study --search     # the study's LIS, min D against L (experiments/study.sh)
python -m experiments.fig1 --preset cpu                # the 2026-12-02 CPU study's LIS slice, 5 mixers
python -m experiments.fig1 --preset paper --shard 0/8  # one of 8 workers at the paper's scale
"""

import sys

from experiments import common
from jaxdp.runtime.devices import use_cpu_cores_for_command
from jaxdp.sweeps import figures

TASKS, MODELS = ("arithmetic", "ed", "lis"), ("standard", "sparse", "linear")


def report(rows, exp_dir, args, plans, preset) -> str:
    path = figures.heatmaps(
        rows, exp_dir / "fig1.png", metric=args.metric, title=f"Figure 1, preset {preset.name}: test {args.metric} (%)"
    )
    return f"heatmaps: {path}"


def main(argv=None) -> int:
    return common.main("fig1", __doc__, TASKS, MODELS, report, argv)


if __name__ == "__main__":
    use_cpu_cores_for_command("python -m experiments.fig1")  # one jax device per CPU core (jaxdp.runtime.devices)
    sys.exit(main())
