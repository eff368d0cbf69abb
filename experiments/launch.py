"""Where a sweep's cells train: in this process (``--launcher inline``, the default) or as a job
array through submitit (``--launcher submitit``): one array task per shard, each running
``jaxdp.sweeps.runner.run`` on its cells ``i, i + n, …``, then this process waits for them and collects.

    python -m experiments.fig1 --preset gpu --launcher submitit --partition gpu --jobs 8 \\
        --gpus-per-task 1 --time-min 240

``--cluster`` picks submitit's executor: ``auto`` (SLURM where ``sbatch`` exists, else local
processes), ``slurm``, ``local`` (one process per task on this machine) or ``debug`` (in this
process). A task preempted or timed out is requeued by submitit (`Shard` is checkpointable) and
resumes through the sweep's own resume: finished cells are skipped and a cut cell continues from
its last checkpoint. Job logs go to ``<results>/submitit/``.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
from pathlib import Path

from jaxdp.args import int_at_least
from jaxdp.runtime.errors import JaxdpError
from jaxdp.sweeps import grids, runner, search
from jaxdp.training.pack import parse_size
from jaxdp.training.protocol import Protocol

LAUNCHERS = ("inline", "submitit")
CLUSTERS = ("auto", "slurm", "local", "debug")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--launcher",
        choices=LAUNCHERS,
        default="inline",
        help="inline: train here (default); submitit: a job array, one task per shard",
    )
    p.add_argument("--cluster", choices=CLUSTERS, default="auto", help="submitit's executor (default: auto)")
    p.add_argument("--jobs", type=int_at_least(1), default=8, help="submitit: array tasks (shards) (default: 8)")
    p.add_argument(
        "--array-parallelism",
        type=int_at_least(1),
        default=8,
        help="submitit: array tasks running at once (default: 8)",
    )
    p.add_argument("--partition", default=None, help="submitit: SLURM partition (default: the cluster's)")
    p.add_argument(
        "--time-min", type=int_at_least(1), default=240, help="submitit: time limit per task, minutes (default: 240)"
    )
    p.add_argument("--gpus-per-task", type=int_at_least(0), default=1, help="submitit: GPUs per task (default: 1)")


class Shard:
    """One array task: `jaxdp.sweeps.runner.run` over the shard's cells, or with a `threshold`
    `jaxdp.sweeps.search.run` over its columns (picklable; requeued by submitit on preemption or
    timeout, where `checkpoint` hands it back unchanged)."""

    def __init__(
        self,
        exp_dir: str,
        cells: list,
        protocol: Protocol,
        data_root: str,
        reporting: dict,
        compile_cache: str | None = None,
        threshold: float | None = None,
        pack: str | int = 1,
        first: str = "largest",
    ):
        self.args = (exp_dir, cells, protocol, data_root, reporting, compile_cache, threshold, pack, first)

    def __call__(self) -> dict:
        exp_dir, cells, protocol, data_root, reporting, compile_cache, threshold, pack, first = self.args
        return train_cells(
            exp_dir,
            cells,
            protocol,
            threshold,
            first,
            data_root=data_root,
            progress=False,
            reporting=reporting,
            compile_cache=compile_cache,
            pack=parse_size(str(pack)),
        )

    def checkpoint(self, *args, **kwargs):
        import submitit

        return submitit.helpers.DelayedSubmission(self)


def check(args) -> None:
    """Refuse a launcher that cannot start, in one line, before anything is built."""
    if args.launcher == "submitit" and importlib.util.find_spec("submitit") is None:
        raise JaxdpError('--launcher submitit: submitit is not installed; pip install -e ".[slurm]"')
    cache = compile_cache(args)
    if cache is not None and Path(cache).exists() and not Path(cache).is_dir():
        raise JaxdpError(f"--compile-cache: {cache} is a file, not a folder (or pass --compile-cache none)")


def train_cells(
    exp_dir, cells: list, protocol: Protocol, threshold: float | None, first: str = "largest", **options
) -> dict:
    """`jaxdp.sweeps.runner.run`, or with a `threshold` the search from `first` (`jaxdp.sweeps.search.run`)."""
    if threshold is None:
        return runner.run(exp_dir, cells, protocol, **options)
    return search.run(exp_dir, cells, protocol, threshold=threshold, first=first, **options)


def run(
    args, exp_dir: Path, cells: list, protocol: Protocol, *, progress: bool, reporting: dict, first: str = "largest"
) -> dict:
    """Train `cells` with the launcher `args` name (searching them from `first` with
    ``--search``); the cells by outcome (`runner.OUTCOMES`)."""
    cache = compile_cache(args)
    threshold = args.threshold if args.search else None
    if args.launcher == "inline":
        return train_cells(
            exp_dir,
            cells,
            protocol,
            threshold,
            first,
            data_root=args.data_root,
            progress=progress,
            max_cells=args.max_cells,
            reporting=reporting,
            compile_cache=cache,
            pack=parse_size(str(args.pack)),
        )
    return submit(args, exp_dir, cells, protocol, reporting, cache, threshold, first)


def submit(args, exp_dir: Path, cells: list, protocol: Protocol, reporting: dict, cache, threshold, first: str) -> dict:
    """`run` through submitit: the cells as ``--jobs`` shards of one job array, waited for."""
    import submitit

    # submitit's logging config binds handlers to the streams of its import (a test's captured
    # ones, closed later); its messages go through the root logger instead
    logging.getLogger("submitit").handlers.clear()

    n = min(args.jobs, max(len(cells), 1))
    cluster = None if args.cluster == "auto" else args.cluster
    executor = submitit.AutoExecutor(folder=str(exp_dir / "submitit"), cluster=cluster)
    name = f"jaxdp-{exp_dir.parent.name}"
    executor.update_parameters(
        timeout_min=args.time_min, slurm_array_parallelism=args.array_parallelism, name=name, **_slurm(args)
    )
    split = search.shard if args.search else grids.shard
    common = (protocol, args.data_root, reporting, cache, threshold, args.pack, first)
    shards = [Shard(str(exp_dir), split(cells, f"{i}/{n}"), *common) for i in range(n)]
    with executor.batch():
        jobs = [executor.submit(shard) for shard in shards]
    print(f"submitted {n} task(s) to {executor.cluster}: {', '.join(job.job_id for job in jobs)}", flush=True)
    outcome: dict[str, list] = {name: [] for name in runner.OUTCOMES}
    for job in jobs:
        try:
            result = job.result()
        except Exception as e:  # a task that raised: its traceback is in its log
            reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            raise JaxdpError(f"submitit task {job.job_id} failed ({reason}); log: {job.paths.stderr}") from None
        for name, done in result.items():
            outcome[name] += done
    return outcome


def compile_cache(args) -> str | None:
    """The folder `--compile-cache` names (default ``<out>/compile-cache``, shared by every
    sweep and shard under that root), or None for ``--compile-cache none``."""
    chosen = args.compile_cache or str(Path(args.out) / "compile-cache")
    return None if chosen == "none" else chosen


def _slurm(args) -> dict:
    out = {"slurm_gpus_per_task": args.gpus_per_task} if args.gpus_per_task else {}
    return {**out, "slurm_partition": args.partition} if args.partition else out
