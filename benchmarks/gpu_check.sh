#!/usr/bin/env bash
# The GPU check for a lent machine (15 minutes of device time, start-up included). From the
# repository root, with jax's CUDA build already installed (the device image has it):
#     bash benchmarks/gpu_check.sh     # writes $OUT (or benchmarks/results/): gpu_check.md, gpu_decode.md,
#                                      # gpu_tests.txt, smoke.txt, fig1_* (8 files: what a lease brings back)
# 0. a smoke run of the check (one mixer, tiny shapes): a broken install stops here (exit 3), in
#    under a minute, and leaves the lease's time for a rerun; 1. the tests of the GPU paths (`gpu` tests:
#    cuDNN attention in the kernel and in the model; the bfloat16 LIS(6) run, which takes cuDNN's
#    attention on a GPU); 2. train rates, then 3. decode rates (benchmarks/gpu_check.py, each table
#    written row by row); 4. one `gpu`-preset cell of Figure 1 end to end (LIS(40), the
#    paper's smallest size, standard D 64: the study's protocol, 8,000 steps at most). Each step has its own time
#    limit so that a slow one leaves the rest their turn: 10 minutes in all, one lease call. On an
#    H200 (2026-12-04) the steps took about 25, 30, 230, 90 and 50 s (step 4 then ran the retired
#    `quick` preset's 975-step cell; the `gpu` cell is up to 8,000 steps, hence its 150 s limit).
set -u
out="${OUT:-benchmarks/results}"
mkdir -p "$out"
export PYTHONPATH="${PYTHONPATH:-}:$(pwd)" PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
python3 -c "import jax, flax, optax, orbax.checkpoint as o; print('jax', jax.__version__, jax.devices(), 'flax', flax.__version__, 'optax', optax.__version__)"
if ! timeout 60 python3 benchmarks/gpu_check.py --smoke --mixers standard >"$out/smoke.txt" 2>&1; then
    tail -n 40 "$out/smoke.txt"
    exit 3
fi
timeout 90 python3 -m pytest -q -n 0 -m "not slow" -k "cudnn or mixed_precision or no_dropout or scatters" \
    tests/models/test_attention.py tests/models/test_transformer.py tests/training/test_fast_paths.py 2>&1 | tail -n 20 | tee "$out/gpu_tests.txt"
timeout 240 python3 benchmarks/gpu_check.py --no-decode --out "$out/gpu_check.md" 2>&1 | tail -n 40
timeout 120 python3 benchmarks/gpu_check.py --no-train --out "$out/gpu_decode.md" 2>&1 | tail -n 12
runs="$(mktemp -d)"  # the cell's checkpoints stay out of $OUT; its table, csv and heatmap are copied
timeout 150 python3 -m experiments.fig1 --preset gpu --yes --quiet --tasks lis --mixers standard --sizes 40 --dims 64 \
    --out "$runs" 2>&1 | tail -n 20 | tee "$out/fig1_cell.txt"
for f in results.csv min_d.md fig1.png; do cp "$runs/fig1/gpu/$f" "$out/fig1_$f" 2>/dev/null; done
exit 0
