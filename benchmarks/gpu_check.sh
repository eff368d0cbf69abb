#!/usr/bin/env bash
# The GPU check for a lent machine (15 minutes of device time, start-up included). From the
# repository root, with jax's CUDA build already installed (the device image has it):
#     bash benchmarks/gpu_check.sh            # writes $OUT (or benchmarks/results/) gpu_check.md and fig1/
# 1. the `gpu` tests (cuDNN attention against the masked kernel, ...), 2. train and decode rates
# (benchmarks/gpu_check.py), 3. one `quick` cell of Figure 1 end to end. Each step has its own
# time limit so that a slow one leaves the rest their turn.
set -u
out="${OUT:-benchmarks/results}"
mkdir -p "$out"
export PYTHONPATH="${PYTHONPATH:-}:$(pwd)"
export XLA_PYTHON_CLIENT_PREALLOCATE=false
timeout 180 python -m pytest -q -p no:xdist -m gpu tests 2>&1 | tail -n 20 | tee "$out/gpu_tests.txt"
timeout 420 python benchmarks/gpu_check.py --out "$out/gpu_check.md" 2>&1 | tail -n 60
timeout 240 python -m experiments.fig1 --preset quick --yes --tasks lis --models standard --sizes 10 --dims 64 \
    --out "$out/fig1" 2>&1 | tail -n 20 | tee "$out/fig1_cell.txt"
