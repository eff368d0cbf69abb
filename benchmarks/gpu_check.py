"""The GPU check, sized for a 15-minute lease: train tokens/s and MFU of every mixer at the
paper's shapes in float32 and bfloat16 (through the real training step), greedy-decoding
throughput, and a Markdown table. `benchmarks/gpu_check.sh` runs it after the `gpu` tests and
before one `quick` cell of Figure 1.

    python benchmarks/gpu_check.py --out benchmarks/results/gpu_check.md
    python benchmarks/gpu_check.py --smoke       # tiny shapes: checks the script on a CPU

MFU = train_flops (jaxdp.flops: 3x the counted forward) x tokens/s / the device's dense peak
(`PEAKS`, the vendor's figure for the dtype; blank for an unknown device).
"""

from __future__ import annotations

import datetime
import platform
import sys
import time
from pathlib import Path

import jax
from flax import nnx

from jaxdp import decode, flops, tasks
from jaxdp.cli import Parser
from jaxdp.models import ModelConfig, Transformer, mixers
from jaxdp.tasks.dataset import build

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vs_torch  # noqa: E402  (the training-step timer; torch is imported only by its torch parts)

#: dense peak FLOP/s by device kind and compute dtype (NVIDIA data sheets, SXM, no sparsity)
PEAKS = {"H100": {"float32": 67e12, "bfloat16": 989e12}, "H200": {"float32": 67e12, "bfloat16": 989e12}}
SHAPES = [(256, 512, 32), (256, 2048, 8)]  # (D, L, batch): Figure 1's widest D at a paper-scale L and a longer one
SMOKE_SHAPES = [(32, 64, 4)]
DECODE = [("ed", 12, 256), ("lis", 40, 256)]  # (task, size, batch)
SMOKE_DECODE = [("lis", 6, 8)]


def peak(dtype: str) -> float | None:
    kind = jax.devices()[0].device_kind
    return next((p[dtype] for name, p in PEAKS.items() if name in kind), None)


def train_rate(cfg: ModelConfig, B: int, L: int, steps: int) -> float:
    """Tokens/s of the real training step (vs_torch's trainer and interleaved timer, 3 rounds)."""
    seconds = vs_torch.median_seconds({"jaxdp": vs_torch.jax_trainer(cfg, B)}, vs_torch.batch(cfg, B, L), steps, rounds=3)
    return B * L / seconds["jaxdp"]


def train_rows(shapes, steps: int) -> list[str]:
    rows = ["| mixer | D, L, batch | dtype | tokens/s | MFU |", "|---|---|---|---|---|"]
    for name in mixers.available():
        for D, L, B in shapes:
            for dtype in ("float32", "bfloat16"):
                cfg = ModelConfig(attention=name, dim=D, max_len=L, vocab_size=32, dtype=dtype, dropout=0.1)
                rate = train_rate(cfg, B, L, steps)
                p = peak(dtype)
                mfu = f"{flops.train_flops(cfg, L) / L * rate / p:.1%}" if p else "–"
                rows.append(f"| {name} | {D}, {L}, {B} | {dtype} | {rate:,.0f} | {mfu} |")
                print(rows[-1], flush=True)
    return rows


def decode_rows(settings) -> list[str]:
    rows = ["| mixer | task, batch | examples/s (decode state) | examples/s (full re-forward) |", "|---|---|---|---|"]
    for name in ("standard", "sparse", "linear"):
        for task_name, size, B in settings:
            task = tasks.get(task_name, size)
            _, test = build(task, 16, B, seed=0, progress=False)
            model = Transformer(ModelConfig(attention=name, dim=128, max_len=task.max_len, vocab_size=len(task.vocab)),
                                rngs=nnx.Rngs(0))  # fmt: skip
            args = (test.tokens, test.prompt_len)
            rates = []
            for full in (False, True):
                decode.generate(model, *args, eos_id=len(task.vocab), batch_size=B, full=full)  # compile
                start = time.perf_counter()
                decode.generate(model, *args, eos_id=len(task.vocab), batch_size=B, full=full)
                rates.append(B / (time.perf_counter() - start))
            rows.append(f"| {name} | {task}, {B} | {rates[0]:,.1f} | {rates[1]:,.1f} |")
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    p = Parser(prog="python benchmarks/gpu_check.py", description=__doc__)
    p.add_argument("--smoke", action="store_true", help="tiny shapes (runs anywhere in a minute)")
    p.add_argument("--out", type=Path, default=None, help="write the Markdown table here too")
    args = p.parse_args()
    device = jax.devices()[0]
    head = [f"# GPU check, {datetime.date.today()}: {device.device_kind} ({jax.default_backend()}), "
            f"jax {jax.__version__}, {platform.node()}", "",
            "Command: `bash benchmarks/gpu_check.sh` (train: real step, dropout 0.1, medians of 3 rounds).", ""]  # fmt: skip
    train = train_rows(SMOKE_SHAPES if args.smoke else SHAPES, 2 if args.smoke else 10)
    dec = decode_rows(SMOKE_DECODE if args.smoke else DECODE)
    text = "\n".join(head + train + [""] + dec) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
