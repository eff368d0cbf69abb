"""What a committed study part cost: the training seconds of each run a results.csv names (its
run folder's ``result.json``, `train_seconds`, every launch summed), in core-hours, since the
study runs each worker on one core. `experiments/study_collect.sh` writes it beside the part.

    python -m experiments.study_hours RESULTS_CSV RUNS_DIR
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

from jaxdp.runtime.files import read_json
from jaxdp.sweeps import collect


def training_seconds(results_csv: str | Path, runs_dir: str | Path) -> dict[str, float]:
    """Training seconds by mixer of the runs `results_csv` names, found under `runs_dir` by
    digest (a run folder's name); a run without its folder is an error."""
    digests = {row["digest"]: row["mixer"] for row in collect.read_csv(results_csv)}
    found = {path.parent.name: path for path in Path(runs_dir).rglob("result.json") if path.parent.name in digests}
    missing = sorted(set(digests) - set(found))
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} runs of {results_csv} are not under {runs_dir}: {', '.join(missing[:5])}"
        )
    seconds: dict[str, float] = defaultdict(float)
    for digest, path in found.items():
        seconds[digests[digest]] += float(read_json(path)["train_seconds"])
    return dict(seconds)


def describe(seconds: dict[str, float], runs: int) -> str:
    per_mixer = ", ".join(f"{name} {value / 3600:.2f}" for name, value in sorted(seconds.items()))
    return (
        f"{runs} runs, {sum(seconds.values()) / 3600:.2f} core-hours of training ({per_mixer}); "
        "result.json's train_seconds summed, each run on one core, final scoring not included"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results_csv")
    parser.add_argument("runs_dir")
    args = parser.parse_args(argv)
    try:
        seconds = training_seconds(args.results_csv, args.runs_dir)
    except (FileNotFoundError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(describe(seconds, len(collect.read_csv(args.results_csv))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
