# Sourced by experiments/study.sh and experiments/cpu_study.sh, which start one worker per core
# in the background. `pin CORE CMD...` runs CMD on that core. The traps: SIGINT or SIGTERM sends
# SIGTERM to each background worker and to what it runs (a training run checkpoints on it), waits
# for them, and exits 130 or 143, so nothing more starts.
pin() { if command -v taskset > /dev/null; then taskset -c "$1" "${@:2}"; else "${@:2}"; fi; }
stop_workers() {
  for pid in $(jobs -p); do
    pkill -TERM -P "$pid" 2> /dev/null || true # a worker's own processes: a subshell does not pass signals on
    kill -TERM "$pid" 2> /dev/null || true
  done
  wait
  exit "$1"
}
trap 'stop_workers 130' INT
trap 'stop_workers 143' TERM
