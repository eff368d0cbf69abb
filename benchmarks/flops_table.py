"""Print the FLOPs tables of the README: the paper's Table 2 against our two accountings, and the
full forward FLOPs per sequence against L for the three kernels at a fixed D.

    python benchmarks/flops_table.py
"""

from __future__ import annotations

from jaxdp import flops, tasks
from jaxdp.models import ModelConfig

TABLE2_L = (87, 221, 355, 505)
TABLE2 = {  # SPEC §4: GFLOPs, and the D that 2·N·L implies for each cell
    "standard": ((0.027, 0.266, 0.426, 0.605), (64, 128, 128, 128)),
    "linear": ((0.422, 4.220, 6.756, 9.584), (256, 512, 512, 512)),
    "sparse": ((0.106, 1.055, 1.690, 2.399), (128, 256, 256, 256)),
}


def table2() -> str:
    vocab = len(tasks.get("arithmetic", 6).vocab)
    rows = ["| model | L | D | paper GFLOPs | 2·N·L | full count | full / paper |", "|---|---|---|---|---|---|---|"]
    for model, (figures, dims) in TABLE2.items():
        for L, D, figure in zip(TABLE2_L, dims, figures):
            cfg = ModelConfig(attention=model, dim=D, max_len=L, vocab_size=vocab)
            ours, full = flops.paper_flops(cfg, L) / 1e9, flops.forward_flops(cfg, L) / 1e9
            rows.append(f"| {model} | {L} | {D} | {figure:.3f} | {ours:.3f} ({ours / figure - 1:+.1%}) "
                        f"| {full:.3f} | {full / figure:.2f}× |")  # fmt: skip
    return "\n".join(rows)


def scaling(dim: int = 256, lengths=(128, 512, 2048, 8192, 32768)) -> str:
    rows = ["| L | standard | sparse (blocked) | linear (chunked) | sparse / standard | linear / standard |",
            "|---|---|---|---|---|---|"]  # fmt: skip
    for L in lengths:
        g = {k: flops.forward_flops(ModelConfig(attention=k, dim=dim, max_len=L, vocab_size=20), L) / 1e9
             for k in ("standard", "sparse", "linear")}  # fmt: skip
        rows.append(f"| {L} | {g['standard']:.3g} | {g['sparse']:.3g} | {g['linear']:.3g} "
                    f"| {g['sparse'] / g['standard']:.2f} | {g['linear'] / g['standard']:.2f} |")  # fmt: skip
    return "\n".join(rows)


if __name__ == "__main__":
    print("Table 2 (arithmetic vocabulary, 3 layers, 4 heads):\n")
    print(table2())
    print("\nFull forward GFLOPs per sequence, D = 256, 3 layers, 4 heads, default block/chunk sizes:\n")
    print(scaling())
