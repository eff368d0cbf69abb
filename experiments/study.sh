#!/usr/bin/env bash
# The study: smallest D against L under the calibrated `study` preset (experiments/presets.py),
# Figure 1 on LIS, Figure 2 with the standard model as control, Table 2 from trained Arithmetic
# models (benchmarks/RESULTS.md, "The study"). Resumable, in parts, across sessions:
#
#     bash experiments/study.sh OUT PART [FLAGS...]
#
#     bash experiments/study.sh ~/jaxdp-runs fig1 --seeds 0 1              # LIS, every size, two seeds
#     bash experiments/study.sh ~/jaxdp-runs fig1 --seeds 0 1 2 --sizes 3 6 10 17 25
#     bash experiments/study.sh ~/jaxdp-runs fig2 --seeds 0 1
#     bash experiments/study.sh ~/jaxdp-runs table2 --seeds 0 1
#
# PART is fig1, fig2 or table2; FLAGS go to its script (`python -m experiments.PART --help`).
# Two workers, one per core, search the same grid (`--search`, from the middle D): a column one
# worker holds is skipped by the other (its run lock), so they share the columns as they come.
# Then the script once more over the whole grid, which trains what a worker left (none, unless
# one was cut) and writes results.csv, min_d.md and the figures. Interrupted, it resumes where it
# stopped when run again (finished cells are skipped, a cut cell resumes from its checkpoint).
set -euo pipefail
source "$(dirname "$0")/study_args.sh" # OUT, PART, PY, PART_FLAGS, STUDY_FLAGS
RUN=("$PY" -m "experiments.$PART" "${STUDY_FLAGS[@]}")
# A bad flag stops here, in one line, before anything trains; else the estimate's line is printed.
"${RUN[@]}" --dry-run | sed -n 1p
mkdir -p "$OUT/logs"
source "$(dirname "$0")/workers.sh" # pin; an interrupt stops the workers and the script
pids=()
# --yes: a study is meant to run for days, in resumable parts, and a worker's own estimate would
# read its probe step on one core beside the other worker's compile (it refused L = 37 that way).
for i in 0 1; do
  pin "$i" "${RUN[@]}" --quiet --yes > "$OUT/logs/$PART.$i.log" 2>&1 &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || true; done # a failed cell is named again by the last pass
"${RUN[@]}" --quiet --yes
