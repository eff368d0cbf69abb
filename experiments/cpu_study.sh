#!/usr/bin/env bash
# The CPU study: Figure 1 (LIS) and Figure 2 (ED_local vs ED) under the `cpu` preset, on a
# 2-core machine in about 2 hours (benchmarks/RESULTS.md, "The CPU study").
#
#     bash experiments/cpu_study.sh [OUT]        # default OUT: runs
#
# Two shards, one per core (small models keep two cores busier as two processes than as one),
# each training its half of fig1 and then of fig2; then each script once more over the whole grid,
# which trains nothing, collects results.csv and draws the figures. Interrupted, it resumes where
# it stopped when run again (finished cells are skipped, a cut cell resumes from its checkpoint).
set -euo pipefail
OUT=${1:-runs}
mkdir -p "$OUT"
source "$(dirname "$0")/workers.sh" # pin; an interrupt stops the workers and the script
pids=()
for i in 0 1; do
  { pin "$i" python -m experiments.fig1 --preset cpu --shard "$i/2" --quiet --out "$OUT" &&
    pin "$i" python -m experiments.fig2 --preset cpu --shard "$i/2" --quiet --out "$OUT"; } > "$OUT/cpu_study.$i.log" 2>&1 &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
python -m experiments.fig1 --preset cpu --quiet --out "$OUT"
python -m experiments.fig2 --preset cpu --quiet --out "$OUT"
