"""What each part of jaxdp's training step costs on this machine: interleaved A/B of variants of
the real step (`vs_torch.jax_trainer`) in one process, medians, with torch eager as the yardstick;
and, with ``--profile``, where a step's time goes by XLA op kind (a `jax.profiler` trace).

Variants: the step as `train` runs it (dropout 0.1, AdamW); without dropout; without any
LayerNorm (``norm="none"``); SGD in place of AdamW; and the base step compiled with XLA-CPU
options (the concurrency-optimised scheduler off, Eigen's multi-threading off). A variant that
runs no faster than the base says its part is not where the time goes.

    python benchmarks/step_ablations.py                 # the four vs_torch shapes; about 8 minutes
    python benchmarks/step_ablations.py --shape 128,84,64 --profile
"""

from __future__ import annotations

import collections
import dataclasses
import gzip
import json
import sys
import tempfile
from pathlib import Path

import jax
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vs_torch  # noqa: E402  (the twin, the trainers and the interleaved timer)

from jaxdp.cli import Parser  # noqa: E402
from jaxdp.models import ModelConfig  # noqa: E402

SCHEDULER_OFF = {"xla_cpu_enable_concurrency_optimized_scheduler": False}
EIGEN_THREADS_OFF = {"xla_cpu_multi_thread_eigen": False}


def variants(cfg: ModelConfig, batch_size: int) -> dict:
    """name -> a training-step function of (tokens, prompt_len, length)."""
    return {
        "base": vs_torch.jax_trainer(cfg, batch_size),
        "dropout 0": vs_torch.jax_trainer(dataclasses.replace(cfg, dropout=0.0), batch_size),
        "no norms": vs_torch.jax_trainer(dataclasses.replace(cfg, norm="none"), batch_size),
        "SGD": vs_torch.jax_trainer(cfg, batch_size, optimizer=optax.sgd(1e-4)),
        "scheduler off": vs_torch.jax_trainer(cfg, batch_size, compiler_options=SCHEDULER_OFF),
        "eigen threads off": vs_torch.jax_trainer(cfg, batch_size, compiler_options=EIGEN_THREADS_OFF),
        "torch eager": vs_torch.torch_trainer(cfg, compiled=False),
    }


def ablation_table(shapes, steps: int, rounds: int):
    """Yields the table's lines, one shape's row at a time: ms per step and (base / variant)."""
    for i, (D, L, B) in enumerate(shapes):
        cfg = vs_torch.train_model(D, L)
        seconds = vs_torch.median_seconds(variants(cfg, B), vs_torch.batch(cfg, B, L), steps, rounds)
        if i == 0:
            yield "| step, ms (base / variant) | " + " | ".join(seconds) + " |"
            yield "|---|" + "---|" * len(seconds)
        cells = [f"{1e3 * s:.0f} ms ({seconds['base'] / s:.2f})" for s in seconds.values()]
        yield f"| D {D}, L {L}, batch {B} | " + " | ".join(cells) + " |"


def op_kind(event_name: str) -> str:
    """`ynn_fusion.12` -> `ynn_fusion`: one row per kind of XLA op."""
    return event_name.split(".")[0]


def profile(D: int, L: int, B: int, steps: int = 5, top: int = 25) -> str:
    """Thread-milliseconds per step by XLA op kind, from a `jax.profiler` trace of `steps` steps."""
    cfg = vs_torch.train_model(D, L)
    step, args = vs_torch.jax_trainer(cfg, B), vs_torch.batch(cfg, B, L)
    for _ in range(3):
        float(step(*args))
    with tempfile.TemporaryDirectory() as folder:
        with jax.profiler.trace(folder):
            for _ in range(steps):
                loss = step(*args)
            float(loss)
        trace = next(Path(folder).rglob("*.trace.json.gz"))
        events = json.load(gzip.open(trace))["traceEvents"]
    per_kind = collections.Counter()
    for e in events:
        if e.get("ph") == "X" and _is_xla_op(e["name"]):
            per_kind[op_kind(e["name"])] += e["dur"] / 1e3 / steps
    total = sum(per_kind.values())
    lines = [f"XLA ops of one step, D {D}, L {L}, batch {B} ({jax.device_count()} devices): "
             f"{total:.0f} thread-ms", "", "| op kind | thread-ms | share |", "|---|---|---|"]  # fmt: skip
    lines += [f"| {k} | {v:.1f} | {v / total:.0%} |" for k, v in per_kind.most_common(top)]
    return "\n".join(lines)


def _is_xla_op(name: str) -> bool:
    """An op of the compiled program, not a runtime or Python span of the trace."""
    runtime = ("ThunkExecutor", "PjitFunction", "CommonPjRt", "Wait for", "$")
    return not name.startswith(runtime) and "(" not in name


def main() -> None:
    p = Parser(prog="python benchmarks/step_ablations.py", description=__doc__)
    p.add_argument("--shape", action="append", help="D,L,batch (repeatable; default: vs_torch's four)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--steps", type=int, default=3, help="steps per round (default 3)")
    p.add_argument("--profile", action="store_true", help="print the op-kind profile instead")
    args = p.parse_args()
    shapes = vs_torch.TRAIN_SHAPES
    if args.shape:
        try:
            shapes = [tuple(int(x) for x in s.split(",")) for s in args.shape]
        except ValueError:
            shapes = []
        if not shapes or not all(len(s) == 3 and min(s) > 0 for s in shapes):
            p.error(f"--shape: expected D,L,batch as three positive ints, got {args.shape}")
    print(f"# {jax.__version__} ({jax.default_backend()}, {jax.device_count()} devices), float32, dropout 0.1, "
          f"{vs_torch.host_memory_setting()}")
    if args.profile:
        for shape in shapes:
            print("\n" + profile(*shape))
        return
    print()
    for line in ablation_table(shapes, args.steps, args.rounds):
        print(line, flush=True)


if __name__ == "__main__":
    vs_torch.start("python benchmarks/step_ablations.py")  # as vs_torch: memory kept unless set
    main()
