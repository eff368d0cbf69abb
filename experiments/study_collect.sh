#!/usr/bin/env bash
# Commit a study part's results as they stand (finished columns, and the probes so far of the
# others): trains nothing. Writes benchmarks/results/study/PART/ with results.csv, min_d.md, the
# part's figures, command.txt, the exact collection command, which
# tests/experiments/test_committed_results.py replays (every row's digest, every column's search path),
# and hours.txt, the training core-hours of its runs (`experiments.study_hours`).
#
#     bash experiments/study_collect.sh OUT PART [FLAGS...]     # FLAGS: those given to study.sh
set -euo pipefail
source "$(dirname "$0")/study_args.sh" # OUT, PART, PY, PART_FLAGS, STUDY_FLAGS
dest=benchmarks/results/study/$PART
mkdir -p "$dest"
exp=$PART
[ "$PART" = table2 ] && exp=fig1 # table2 shares its runs (and results folder) with fig1
"$PY" -m "experiments.$PART" "${STUDY_FLAGS[@]}" --collect --quiet > "$dest/collect.txt"
copy=(results.csv min_d.md)
case "$PART" in
  fig1)
    "$PY" -m experiments.scaling "${STUDY_FLAGS[@]}" --collect --quiet > /dev/null
    copy+=(fig1.png scaling.png scaling.md)
    ;;
  fig2) copy+=(fig2.png) ;;
  table2) copy+=(table2.md table2.csv) ;;
esac
for f in "${copy[@]}"; do cp "$OUT/$exp/study/$f" "$dest/$f"; done
echo "python -m experiments.$PART --preset study --search ${PART_FLAGS[*]}" > "$dest/command.txt"
"$PY" -m experiments.study_hours "$dest/results.csv" "$OUT/$exp/study" > "$dest/hours.txt"
echo "committed to $dest: ${copy[*]} command.txt hours.txt ($(cut -d';' -f1 "$dest/hours.txt"))"
