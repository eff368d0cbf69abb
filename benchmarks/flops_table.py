"""Print the FLOPs tables of docs/models.md: the paper's Table 2 against our two accountings, and the
full forward FLOPs per sequence against L for the three kernels at a fixed D.

    python benchmarks/flops_table.py
"""

from __future__ import annotations

from jaxdp import tasks
from jaxdp.models import ModelConfig, flops
from jaxdp.sweeps import tables


def table2() -> str:
    return tables.paper_table2_markdown(vocab_size=len(tasks.get("arithmetic", 6).vocab))


def scaling(dim: int = 256, lengths=(128, 512, 2048, 8192, 32768)) -> str:
    rows = [
        "| L | standard | sparse (blocked) | linear (chunked) | sparse / standard | linear / standard |",
        "|---|---|---|---|---|---|",
    ]
    for L in lengths:
        g = {
            k: flops.forward_flops(ModelConfig(mixer=k, dim=dim, max_len=L, vocab_size=20), L) / 1e9
            for k in ("standard", "sparse", "linear")
        }
        rows.append(
            f"| {L} | {g['standard']:.3g} | {g['sparse']:.3g} | {g['linear']:.3g} "
            f"| {g['sparse'] / g['standard']:.2f} | {g['linear'] / g['standard']:.2f} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    print("Table 2 (arithmetic vocabulary, 3 layers, 4 heads):\n")
    print(table2())
    print("\nFull forward GFLOPs per sequence, D = 256, 3 layers, 4 heads, default block/chunk sizes:\n")
    print(scaling())
