"""Table 2: the minimum forward GFLOPs per sequence of a model reaching ≥ 90% on Arithmetic.
Shares its runs with fig1 (the Arithmetic column).

    python -m experiments.table2 --preset paper --dry-run   # the paper's cells from jaxdp.flops
    python -m experiments.table2 --preset quick             # fill the table from results
"""

import csv
import sys

from experiments import common
from jaxdp import flops, plots, tasks

def paper_cells(args, preset) -> str:
    """The cells the paper reports, computed by jaxdp.flops (the --dry-run output)."""
    return flops.paper_table2_markdown(vocab_size=len(tasks.get("arithmetic", 6).vocab))


def report(rows, exp_dir) -> str:
    entries = plots.table2(rows)
    with open(exp_dir / "table2.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(entries[0]))
        writer.writeheader()
        writer.writerows(entries)
    table = plots.table2_markdown(entries)
    (exp_dir / "table2.md").write_text(table + "\n")
    return "Table 2 (GFLOPs per sequence, 2·N·L; full count and D in brackets):\n\n" + table


def main(argv=None) -> int:
    return common.main("table2", __doc__, ("arithmetic",), ("standard", "linear", "sparse"), report, argv,
                       exp="fig1", dry_run=paper_cells)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
