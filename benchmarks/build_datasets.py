"""Time building the paper's datasets (1,000,000 train + 100,000 test) at the largest sizes.

    python benchmarks/build_datasets.py                      # lis 250, arithmetic 16, ed 20, ed_local 20
    python benchmarks/build_datasets.py --only lis --train 100000 --test 10000

Prints one Markdown row per task (paste into benchmarks/RESULTS.md with machine and date).
Nothing is written to disk unless --out is given.
"""

import argparse
import os
import platform
import time

from jaxdp import tasks
from jaxdp.tasks import dataset

LARGEST = {"lis": 250, "arithmetic": 16, "ed": 20, "ed_local": 20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=list(LARGEST), default=list(LARGEST))
    parser.add_argument("--train", type=int, default=1_000_000)
    parser.add_argument("--test", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--out", default=None, help="also save under OUT/<task>-<size>/")
    args = parser.parse_args()
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print("| task | size | train + test | seconds | longest / max_len |")
    print("|---|---|---|---|---|")
    for name in args.only:
        task = tasks.get(name, LARGEST[name])
        start = time.perf_counter()
        train, test = dataset.build(task, args.train, args.test, seed=0, workers=args.workers)
        seconds = time.perf_counter() - start
        if args.out:
            for d in (train, test):
                dataset.save(d, f"{args.out}/{name}-{task.size}/{d.split}.npz")
        longest = max(int(train.length.max()), int(test.length.max()))
        print(f"| {name} | {task.size} | {len(train):,} + {len(test):,} | {seconds:.0f} | {longest} / {task.max_len} |", flush=True)


if __name__ == "__main__":
    main()
