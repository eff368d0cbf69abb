"""Arithmetic chain lengths: our leftmost-handle chains vs the benchmark's reversed build
histories, on the same expressions, at the paper's sizes (without <eos>, as the paper counts).

    python benchmarks/arithmetic_lengths.py --samples 300000
"""

import argparse

import numpy as np

from jaxdp import tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(
        "| n | paper's L | bound 2n²+2n+1 | ours: mean / max | benchmark order: mean / max "
        f"| ({args.samples:,} samples, seed {args.seed}) |"
    )
    print("|---|---|---|---|---|---|")
    for n, paper in zip(tasks.PAPER_SIZES["arithmetic"], tasks.PAPER_MAX_LENGTHS["arithmetic"]):
        task = tasks.get("arithmetic", n)
        rng = np.random.default_rng(args.seed)
        ours, bench = np.empty(args.samples, int), np.empty(args.samples, int)
        for s in range(args.samples):
            history = task.build_history(rng)
            prompt = history[-1] + ["="]
            ours[s] = len(prompt) + len(task.solve(prompt)) - 1
            bench[s] = sum(len(e) for e in history) + n  # e_n … e_0 joined by n '='
        print(
            f"| {n} | {paper} | {task.max_len - 1} | {ours.mean():.1f} / {ours.max()} "
            f"| {bench.mean():.1f} / {bench.max()} | |",
            flush=True,
        )


if __name__ == "__main__":
    main()
