# Sourced by experiments/study.sh and experiments/study_collect.sh: reads OUT and PART from
# "$@" (a usage line and exit 2 when either is missing or PART is not fig1, fig2 or table2)
# and sets PY, PART_FLAGS (the flags after them, for PART's script) and STUDY_FLAGS (the study
# preset's flags with PART_FLAGS).
usage="usage: bash $0 OUT PART [FLAGS...]   (PART: fig1, fig2 or table2)"
if [ $# -lt 2 ]; then
  echo "$usage" >&2
  exit 2
fi
OUT=$1 PART=$2
PART_FLAGS=("${@:3}")
case "$PART" in fig1 | fig2 | table2) ;; *)
  echo "error: PART must be fig1, fig2 or table2, got '$PART'" >&2
  exit 2
  ;;
esac
PY=${PYTHON:-python}
STUDY_FLAGS=(--preset study --search --out "$OUT" --data-root "$OUT/data" "${PART_FLAGS[@]}")
