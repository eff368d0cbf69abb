"""Time building the paper's datasets (1,000,000 train + 100,000 test) at the largest sizes.

    python benchmarks/build_datasets.py                      # lis 250, arithmetic 16, ed 20, ed_local 20
    python benchmarks/build_datasets.py --only lis --train 100000 --test 10000
    python benchmarks/build_datasets.py --largest-accepted  # each task at its MAX_SIZE, 4 + 2 examples:
                                                             # seconds and peak memory, one process each

Prints one Markdown row per task (paste into benchmarks/RESULTS.md with machine and date).
Nothing is written to disk unless --out is given.
"""

import argparse
import os
import platform
import resource
import subprocess
import sys
import time

from jaxdp import tasks
from jaxdp.tasks import builder, dataset

LARGEST = {"lis": 250, "arithmetic": 16, "ed": 20, "ed_local": 20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=list(LARGEST), default=list(LARGEST))
    parser.add_argument("--train", type=int, default=1_000_000)
    parser.add_argument("--test", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--out", default=None, help="also save under OUT/<task>-<size>/")
    parser.add_argument(
        "--largest-accepted",
        action="store_true",
        help="each task at the largest size it accepts (4 + 2 examples), in a process of its own",
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return largest_accepted_row(args.child)
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    if args.largest_accepted:
        print("| task | size | train + test | seconds | peak RSS (MiB) |")
        print("|---|---|---|---|---|")
        for name in args.only:
            subprocess.run([sys.executable, __file__, "--child", name], check=True)
        return
    print("| task | size | train + test | seconds | longest / max_len |")
    print("|---|---|---|---|---|")
    for name in args.only:
        task = tasks.get(name, LARGEST[name])
        start = time.perf_counter()
        train, test = builder.build(task, args.train, args.test, seed=0, workers=args.workers)
        seconds = time.perf_counter() - start
        if args.out:
            for d in (train, test):
                dataset.save(d, f"{args.out}/{name}-{task.size}/{d.split}.npz")
        longest = max(int(train.length.max()), int(test.length.max()))
        print(
            f"| {name} | {task.size} | {len(train):,} + {len(test):,} | {seconds:.0f} | {longest} / {task.max_len} |",
            flush=True,
        )


def largest_accepted_row(name: str) -> None:
    """One row: `name` at its MAX_SIZE, 4 + 2 examples (one generation chunk each), in this
    process, with its peak resident memory."""
    task = tasks.get(name, tasks.TASKS[name].MAX_SIZE)
    start = time.perf_counter()
    train, test = builder.build(task, 4, 2, seed=0, progress=False)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"| {name} | {task.size} | {len(train)} + {len(test)} | {seconds:.1f} | {peak:.0f} |", flush=True)


if __name__ == "__main__":
    main()
