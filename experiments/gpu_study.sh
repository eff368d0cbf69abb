#!/usr/bin/env bash
# The study's GPU part, for a lent machine: one call of at most 10 minutes. Figure 1's LIS column
# at the paper's smallest size (N = 40, L = 83) under the `gpu` preset (the study's protocol),
# searched from the middle D, two seeds; then, in the time left, N = 110 (L = 223). Each size
# gets the time left, minus a minute for the last collection, and stops cleanly at its limit
# (SIGTERM: the cell in flight checkpoints). From the repository root:
#
#     OUT=benchmarks/results/gpu-study bash experiments/gpu_study.sh [SECONDS]   # default 540
#
# $OUT receives results.csv, min_d.md, fig1.png and one log per size. Tested on a CPU at tiny
# sizes with PRESET=tiny SIZES="4 6" DIMS="8 16" MODELS="standard linear" (tests/experiments/test_experiments.py).
# A search probes one D of one column at a time, so nothing is packed (`--pack` packs the seeds
# and learning rates of one cell, which a search column does not hold).
set -u
out=${OUT:-benchmarks/results/gpu-study}
budget=${1:-540}
preset=${PRESET:-gpu}
sizes=${SIZES:-40 110}
models=${MODELS:-standard sparse linear mamba2 gated_deltanet}
dims=${DIMS:-}
py=${PYTHON:-python3}
mkdir -p "$out"
runs="$(mktemp -d)" # checkpoints stay out of $OUT
start=$(date +%s)
# shellcheck disable=SC2086  # the lists are meant to split
flags=(--preset "$preset" --yes --quiet --search --tasks lis --seeds 0 1 --mixers $models --out "$runs"
  --data-root "$runs/data" ${dims:+--dims $dims})
for size in $sizes; do
  left=$((budget - ($(date +%s) - start) - 60))
  if [ "$left" -lt 60 ]; then
    echo "size $size: skipped, ${left}s left" | tee -a "$out/skipped.txt"
    continue
  fi
  timeout --signal=TERM --kill-after=30 "$left" "$py" -m experiments.fig1 "${flags[@]}" --sizes "$size" \
    > "$out/fig1_lis$size.log" 2>&1
  echo "size $size: exit $? after $(($(date +%s) - start))s" | tee -a "$out/sizes.txt"
done
# shellcheck disable=SC2086
"$py" -m experiments.fig1 "${flags[@]}" --sizes $sizes --collect > "$out/collect.log" 2>&1
for f in results.csv min_d.md fig1.png; do cp "$runs/fig1/$preset/$f" "$out/$f" 2> /dev/null; done
tail -n 30 "$out/collect.log"
exit 0
