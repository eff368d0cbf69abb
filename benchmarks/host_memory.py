"""What keeping freed host memory (`jaxdp.runtime.host_memory`) is worth to jaxdp's training step: the
step (`vs_torch.jax_trainer`, as `train` runs it) timed in child processes with glibc's default
malloc (``JAXDP_KEEP_HOST_MEMORY=0``) and with the memory kept, alternating, medians; with each
step's page faults and kernel time (``getrusage``), which say where the difference goes; and, for
what keeping it costs, the time to compile and run the first step (the one heap's lock slows
XLA's compiler threads) and the process's resident memory after 16 and 96 steps. The first shape
is the README's LIS(6) run, whose temporaries stay under glibc's mmap threshold: nothing to gain.

    python benchmarks/host_memory.py                      # that shape and vs_torch's four; about 14 minutes
    python benchmarks/host_memory.py --shape 128,84,64
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vs_torch  # noqa: E402  (the trainers)

from jaxdp.args import Parser  # noqa: E402
from jaxdp.runtime import host_memory  # noqa: E402
from jaxdp.runtime.devices import use_cpu_cores  # noqa: E402

SETTINGS = {"glibc default": "0", "memory kept": "1"}  # JAXDP_KEEP_HOST_MEMORY
SMALL_SHAPE = (64, 16, 64)  # the README's LIS(6) training run: temporaries under the mmap threshold


def resident_mb() -> float:
    """This process's resident memory now (Linux), MB."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(D: int, L: int, B: int, warmup: int = 6, steps: int = 10, more: int = 80) -> dict:
    """Seconds to build, compile and run the first step; ms per step, user and kernel CPU ms per
    step, page faults per step, in this process; and the resident memory after the timed steps and
    after `more` steps after them."""
    start = time.perf_counter()
    cfg = vs_torch.train_model(D, L)
    step, args = vs_torch.jax_trainer(cfg, B), vs_torch.batch(cfg, B, L)
    float(step(*args))
    compile_s = time.perf_counter() - start
    for _ in range(warmup - 1):
        float(step(*args))
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(steps):
        loss = step(*args)
    float(loss)
    after, seconds = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - start
    resident = resident_mb()
    for _ in range(more):
        loss = step(*args)
    float(loss)
    return {
        "compile_s": compile_s,
        "ms": 1e3 * seconds / steps,
        "user_ms": 1e3 * (after.ru_utime - before.ru_utime) / steps,
        "kernel_ms": 1e3 * (after.ru_stime - before.ru_stime) / steps,
        "faults": (after.ru_minflt - before.ru_minflt) / steps,
        "resident_mb": resident,
        "resident_mb_later": resident_mb(),
    }


def in_child(shape, keep: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}  # compile every time
    env[host_memory.VARIABLE] = keep
    cmd = [sys.executable, __file__, "--child", ",".join(map(str, shape))]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def table(shapes, repeats: int):
    yield (
        "| train step (dropout 0.1) | ms, glibc default | ms, memory kept | speed-up | page faults per step "
        "| kernel ms per step | first step (compile) s, default → kept "
        "| resident MB after 16 → 96 steps, default | the same, kept |"
    )
    yield "|---|---|---|---|---|---|---|---|---|"
    for shape in shapes:
        runs = {name: [] for name in SETTINGS}
        for _ in range(repeats):
            for name, keep in SETTINGS.items():
                runs[name].append(in_child(shape, keep))
        med = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()}
        a, b = med["glibc default"], med["memory kept"]
        D, L, B = shape
        yield (
            f"| D {D}, L {L}, batch {B} | {a['ms']:.0f} | {b['ms']:.0f} | {a['ms'] / b['ms']:.2f} "
            f"| {a['faults']:,.0f} → {b['faults']:,.0f} | {a['kernel_ms']:.0f} → {b['kernel_ms']:.0f} "
            f"| {a['compile_s']:.1f} → {b['compile_s']:.1f} "
            f"| {a['resident_mb']:,.0f} → {a['resident_mb_later']:,.0f} "
            f"| {b['resident_mb']:,.0f} → {b['resident_mb_later']:,.0f} |"
        )


def main() -> None:
    p = Parser(prog="python benchmarks/host_memory.py", description=__doc__)
    p.add_argument(
        "--shape",
        type=vs_torch.shape,
        action="append",
        help="D,L,batch (repeatable; default: the README's LIS(6) run's, then vs_torch's four)",
    )
    p.add_argument("--repeats", type=int, default=2, help="child processes per setting and shape (default 2)")
    p.add_argument("--child", type=vs_torch.shape, help=argparse.SUPPRESS)  # D,L,batch: measure in this process
    args = p.parse_args()
    shapes = args.shape or [SMALL_SHAPE, *vs_torch.TRAIN_SHAPES]
    if args.repeats < 1:
        p.error(f"--repeats: expected a positive int, got {args.repeats}")
    if args.child:
        use_cpu_cores()  # keeps the memory where JAXDP_KEEP_HOST_MEMORY=1
        print(json.dumps(measure(*args.child)))
        return
    print(f"# {vs_torch.platform.node()}, one jax device per core, float32; medians of {args.repeats} processes each")
    for line in table(shapes, args.repeats):
        print(line, flush=True)


if __name__ == "__main__":
    main()
