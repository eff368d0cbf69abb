"""Figure 2: the efficient models on ED_local (m-locality) against plain ED.

    python -m experiments.fig2 --preset quick
"""

import sys

from experiments import common
from jaxdp import plots


def report(rows, exp_dir) -> str:
    path = plots.heatmaps(rows, exp_dir / "fig2.png", title="Figure 2: ED_local vs ED, accuracy (%)")
    return f"heatmaps: {path}\n\n" + plots.scaling_table(rows)


def main(argv=None) -> int:
    return common.main("fig2", __doc__, ("ed_local", "ed"), ("sparse", "linear"), report, argv)


if __name__ == "__main__":
    sys.exit(main())
