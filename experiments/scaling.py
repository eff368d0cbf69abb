"""The view the paper lacks: the smallest D reaching 90% against L, per task and model, with a
log-log fit of the exponent (theory: 1/2 for the efficient models). Shares its runs with fig1.
L is each task's longest sequence without <eos> (our max_len − 1).

    python -m experiments.scaling --preset gpu
"""

import sys

from experiments import common
from jaxdp.runtime import files
from jaxdp.runtime.devices import use_cpu_cores_for_command
from jaxdp.sweeps import figures, tables


def report(rows, exp_dir, args, plans, preset) -> str:
    path = figures.scaling(rows, exp_dir / "scaling.png", metric=args.metric)
    table = tables.scaling_table(rows, metric=args.metric)
    files.write_text(exp_dir / "scaling.md", table + "\n")
    return table + f"\n\nplot: {path}"


def main(argv=None) -> int:
    return common.main(
        "scaling", __doc__, ("arithmetic", "ed", "lis"), ("standard", "sparse", "linear"), report, argv, exp="fig1"
    )


if __name__ == "__main__":
    use_cpu_cores_for_command("python -m experiments.scaling")  # one jax device per CPU core (jaxdp.runtime.devices)
    sys.exit(main())
