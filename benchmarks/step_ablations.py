"""What each part of jaxdp's training step costs on this machine: interleaved A/B of variants of
the real step (`vs_torch.jax_trainer`) in one process, medians, with torch eager as the yardstick;
and, with ``--profile``, where a step's time goes by XLA op kind (a `jax.profiler` trace).

Variants: the step as `train` runs it (dropout 0.1, AdamW); without dropout; without any
LayerNorm (``norm="none"``); SGD in place of AdamW; and the base step compiled with XLA-CPU
options (the concurrency-optimised scheduler off, Eigen's multi-threading off); and on one jax
device with two threads instead of one device per core (no all-reduce). A variant that
runs no faster than the base says its part is not where the time goes.

    python benchmarks/step_ablations.py                 # the four vs_torch shapes; about 8 minutes
    python benchmarks/step_ablations.py --shape 128,84,64 --profile
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import jax
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent))
import op_profile  # noqa: E402  (the op-kind profile)
import vs_torch  # noqa: E402  (the twin, the trainers and the interleaved timer)

from jaxdp.args import Parser  # noqa: E402
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
        "one device": vs_torch.jax_trainer(cfg, batch_size, devices=jax.devices()[:1]),
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


def profile(D: int, L: int, B: int, steps: int = 5, top: int = 25) -> str:
    """Thread-milliseconds per step by XLA op kind (`op_profile`: a `jax.profiler` trace)."""
    per_kind = op_profile.profile(vs_torch.train_model(D, L), B, L, steps)
    return (
        f"XLA ops of one step, D {D}, L {L}, batch {B} ({jax.device_count()} devices), thread-ms per step "
        f"(ops per step)\n\n" + op_profile.table({"float32": per_kind}, top)
    )


def main() -> None:
    p = Parser(prog="python benchmarks/step_ablations.py", description=__doc__)
    p.add_argument(
        "--shape", type=vs_torch.shape, action="append", help="D,L,batch (repeatable; default: vs_torch's four)"
    )
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--steps", type=int, default=3, help="steps per round (default 3)")
    p.add_argument("--profile", action="store_true", help="print the op-kind profile instead")
    args = p.parse_args()
    shapes = args.shape or vs_torch.TRAIN_SHAPES
    print(
        f"# {jax.__version__} ({jax.default_backend()}, {jax.device_count()} devices), float32, dropout 0.1, "
        f"{vs_torch.host_memory_setting()}"
    )
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
