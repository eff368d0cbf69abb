"""The paper's open question, asked of any registered mixer: the Figure 1 grid on LIS, ED and
ED_local, with accuracy against the hidden size D and against the state size (the numbers the
decode state holds after L tokens, all layers and heads: what the pigeonhole bounds count).

    python -m experiments.mixers --preset tiny                     # every mixer, on a CPU
    python -m experiments.mixers --mixers linear retention gated --preset gpu
    python -m experiments.mixers --preset tiny --mixers standard linear mamba2 deltanet gated_deltanet
    python -m experiments.mixers --preset tiny --mixers linear mamba2 --hybrid standard   # + one softmax layer
    python -m experiments.mixers --preset tiny --mixers mamba2 --set short_conv=4        # Mamba's short conv
"""

import sys

from experiments import common
from jaxdp.models import mixers
from jaxdp.runtime.devices import use_cpu_cores_for_command
from jaxdp.sweeps import figures, tables


def report(rows, exp_dir, args, plans, preset) -> str:
    heat = figures.heatmaps(rows, exp_dir / "mixers.png", metric=args.metric, title=f"mixers: {args.metric} (%)")
    by_dim = figures.curves(rows, exp_dir / "mixers_vs_d.png", x="dim", metric=args.metric)
    by_state = figures.curves(rows, exp_dir / "mixers_vs_state.png", x="state_size", metric=args.metric)
    return f"heatmaps: {heat}\ncurves: {by_dim}, {by_state}\n\n" + tables.scaling_table(rows, metric=args.metric)


def main(argv=None) -> int:
    return common.main("mixers", __doc__, ("lis", "ed", "ed_local"), mixers.available(), report, argv)


if __name__ == "__main__":
    use_cpu_cores_for_command("python -m experiments.mixers")  # one jax device per CPU core (jaxdp.runtime.devices)
    sys.exit(main())
