"""The GPU check, sized for a 15-minute lease: train tokens/s and MFU of every mixer at the
paper's shapes in float32 and bfloat16 (through the real training step), greedy-decoding
throughput, and a Markdown table written row by row. `benchmarks/gpu_check.sh` runs it (training,
then decoding) after the `gpu` tests and before one `gpu`-preset cell of Figure 1.

    python benchmarks/gpu_check.py --out benchmarks/results/gpu_check.md
    python benchmarks/gpu_check.py --smoke       # tiny shapes: checks the script on a CPU
    python benchmarks/gpu_check.py --no-decode --mixers standard --shape 1024,512,32   # one question

MFU = train_flops (jaxdp.models.flops: 3x the counted forward) x tokens/s / the device's dense peak
(`PEAKS`, the vendor's figure for the dtype, TF32's for float32; blank for an unknown device).
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import time
from pathlib import Path

import flax
import jax
from flax import nnx

from jaxdp import tasks
from jaxdp.args import Parser
from jaxdp.evaluation import decode
from jaxdp.models import ModelConfig, Transformer, flops, mixers
from jaxdp.runtime import files
from jaxdp.tasks.builder import build

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vs_torch  # noqa: E402  (the training-step timer; torch is imported only by its torch parts)

#: dense peak FLOP/s by device kind and compute dtype (NVIDIA data sheets, SXM, no sparsity); float32
#: is the TF32 tensor-core figure, since XLA's default precision runs float32 matmuls as TF32 on a GPU
PEAKS = {"H100": {"float32": 495e12, "bfloat16": 989e12}, "H200": {"float32": 495e12, "bfloat16": 989e12}}
SHAPES = [(256, 512, 32), (256, 2048, 8)]  # (D, L, batch): Figure 1's widest D at a paper-scale L and a longer one
SMOKE_SHAPES = [(32, 64, 4)]
STEPS, SMOKE_STEPS = 20, 2
DECODE = [("ed", 12, 256), ("lis", 40, 256)]  # (task, size, batch)
SMOKE_DECODE = [("lis", 6, 8)]


def peak(dtype: str) -> float | None:
    kind = jax.devices()[0].device_kind
    return next((p[dtype] for name, p in PEAKS.items() if name in kind), None)


def train_rate(cfg: ModelConfig, B: int, L: int, steps: int) -> float:
    """Tokens/s of the real training step (vs_torch's trainer and interleaved timer, 3 rounds)."""
    seconds = vs_torch.median_seconds(
        {"jaxdp": vs_torch.jax_trainer(cfg, B)}, vs_torch.batch(cfg, B, L), steps, rounds=3
    )
    return B * L / seconds["jaxdp"]


class Report:
    """The Markdown report, printed and (with `path`) rewritten after every row: a check cut off
    by its time limit still leaves the rows it measured."""

    def __init__(self, path: Path | None, head: list[str]):
        self.path, self.lines = path, []
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.add(*head)

    def add(self, *lines: str) -> None:
        self.lines += lines
        print("\n".join(lines), flush=True)
        if self.path:
            files.write_text(self.path, "\n".join(self.lines) + "\n")  # atomic: a timeout never tears it


def train_runs(names) -> list[tuple[str, float, str]]:
    """(mixer, dropout, dtype): every mixer in float32 and bfloat16 with dropout 0.1, and the
    standard one in bfloat16 without dropout, the case that takes cuDNN's fused attention."""
    runs = [(name, 0.1, dtype) for name in names for dtype in ("float32", "bfloat16")]
    return runs + [("standard", 0.0, "bfloat16")] * ("standard" in names)


def train_rows(report: Report, names, shapes, steps: int) -> None:
    report.add("", "| mixer | D, L, batch | dtype | dropout | tokens/s | MFU |", "|---|---|---|---|---|---|")
    for D, L, B in shapes:
        for name, dropout, dtype in train_runs(names):
            cfg = ModelConfig(mixer=name, dim=D, max_len=L, vocab_size=32, dtype=dtype, dropout=dropout)
            rate = train_rate(cfg, B, L, steps)
            p = peak(dtype)
            mfu = f"{flops.train_flops(cfg, L) / L * rate / p:.1%}" if p else "–"
            report.add(f"| {name} | {D}, {L}, {B} | {dtype} | {dropout} | {rate:,.0f} | {mfu} |")


def decode_rows(report: Report, names, settings) -> None:
    report.add(
        "", "| mixer | task, batch | examples/s (decode state) | examples/s (full re-forward) |", "|---|---|---|---|"
    )
    for task_name, size, B in settings:
        task = tasks.get(task_name, size)
        _, test = build(task, 16, B, seed=0, progress=False)
        for name in names:
            model = Transformer(
                ModelConfig(mixer=name, dim=128, max_len=task.max_len, vocab_size=len(task.vocab)), rngs=nnx.Rngs(0)
            )
            rates = [decode_rate(model, test, B, full, eos_id=len(task.vocab)) for full in (False, True)]
            report.add(f"| {name} | {task_name.upper()}({size}), {B} | {rates[0]:,.1f} | {rates[1]:,.1f} |")


def decode_rate(model, test, B: int, full: bool, eos_id: int) -> float:
    """Examples/s of greedy decoding of `B` test prompts (the second call: the first compiles)."""
    args = (test.tokens, test.prompt_len)
    decode.generate(model, *args, eos_id=eos_id, batch_size=B, full=full)
    start = time.perf_counter()
    decode.generate(model, *args, eos_id=eos_id, batch_size=B, full=full)
    return B / (time.perf_counter() - start)


def mixer_names(text: str) -> tuple[str, ...]:
    names = tuple(text.split(","))
    unknown = [n for n in names if n not in mixers.available()]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown mixer {unknown[0]!r}; choose from {', '.join(mixers.available())}")
    return names


def main() -> None:
    p = Parser(prog="python benchmarks/gpu_check.py", description=__doc__)
    p.add_argument("--smoke", action="store_true", help="tiny shapes (runs anywhere in a minute)")
    p.add_argument("--mixers", type=mixer_names, default=mixers.available(), help="comma-separated mixers")
    p.add_argument(
        "--shape", type=vs_torch.shape, action="append", help=f"D,L,batch to train (repeatable; default {SHAPES})"
    )
    p.add_argument("--no-train", action="store_true", help="skip the training rates")
    p.add_argument("--no-decode", action="store_true", help="skip the decoding rates")
    p.add_argument("--out", type=Path, default=None, help="write the Markdown table here too, row by row")
    args = p.parse_args()
    device, steps = jax.devices()[0], SMOKE_STEPS if args.smoke else STEPS
    report = Report(
        args.out,
        [
            f"# GPU check, {datetime.date.today()}: {device.device_kind} ({jax.default_backend()}), "
            f"jax {jax.__version__}, flax {flax.__version__}, {platform.node()}",
            "",
            f"Command: `{' '.join(['python benchmarks/gpu_check.py'] + sys.argv[1:])}` (train: the real step, "
            f"medians of 3 rounds of {steps} steps; decode: the second of two calls, D 128).",
        ],
    )
    if not args.no_train:
        train_rows(report, args.mixers, args.shape or (SMOKE_SHAPES if args.smoke else SHAPES), steps)
    if not args.no_decode:
        decode_mixers = [name for name in ("standard", "sparse", "linear") if name in args.mixers]
        decode_rows(report, decode_mixers, SMOKE_DECODE if args.smoke else DECODE)


if __name__ == "__main__":
    main()
