"""Table 2: the minimum GFLOPs per sequence of a model reaching ≥ 90% on Arithmetic. Shares its
runs with fig1 (the Arithmetic column). The paper counts 2·N·L at its own lengths L = 87, 221,
355, 505 (`jaxdp.tasks.PAPER_MAX_LENGTHS`); each cell gives that figure, our full count at our
L, and the smallest D that reached 90%.

    python -m experiments.table2 --preset paper --dry-run   # the paper's cells from jaxdp.models.flops
    python -m experiments.table2 --preset gpu             # fill the table from results
"""

import csv
import sys

from experiments import common
from jaxdp import tasks
from jaxdp.runtime import files
from jaxdp.runtime.devices import use_cpu_cores_for_command
from jaxdp.sweeps import tables


def paper_cells(plans, preset) -> str:
    """The cells the paper reports, computed by jaxdp.models.flops at the paper's L (the --dry-run output)."""
    return tables.paper_table2_markdown(vocab_size=len(tasks.get("arithmetic", 6).vocab))


def report(rows, exp_dir, args, plans, preset) -> str:
    entries = tables.table2(rows, metric=args.metric)
    if not entries:
        return "Table 2: no Arithmetic results yet"
    with files.replacing(exp_dir / "table2.csv", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(entries[0]))
        writer.writeheader()
        writer.writerows(entries)
    table = tables.table2_markdown(entries)
    files.write_text(exp_dir / "table2.md", table + "\n")
    return "Table 2:\n\n" + table


def main(argv=None) -> int:
    return common.main(
        "table2",
        __doc__,
        ("arithmetic",),
        ("standard", "linear", "sparse"),
        report,
        argv,
        exp="fig1",
        dry_run=paper_cells,
    )


if __name__ == "__main__":
    use_cpu_cores_for_command("python -m experiments.table2")  # one jax device per CPU core (jaxdp.runtime.devices)
    sys.exit(main())
