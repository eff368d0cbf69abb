"""Where the real training step's time goes, by XLA operation, in one or more compute dtypes side
by side: a `jax.profiler` trace of a few steps, read back with `jax.profiler.ProfileData` (no
TensorBoard needed). On a GPU the device's "XLA Ops" lines (or its streams' kernels) are summed;
on a CPU the XLA worker threads' op events, over all of vs_torch's devices (one per core): CPU
time, not wall time. Ops are grouped by name with their numeric suffix dropped (`loop_convert_fusion.12`
and `.31` count together), so the table shows kinds of work, not single instructions.

    python benchmarks/op_profile.py --shape 256,512,32 --dtypes float32,bfloat16     # on a GPU
    python benchmarks/op_profile.py --shape 64,64,8 --steps 3                        # CPU smoke
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
import tempfile
from pathlib import Path

import jax

from jaxdp.args import Parser, int_at_least
from jaxdp.models import ModelConfig, mixers

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vs_torch  # noqa: E402  (the real training step, as benchmarks time it)

DTYPES = ("float32", "bfloat16", "float16")
#: spans of XLA's CPU runtime and of Python in a trace, not ops of the compiled program
RUNTIME = ("ThunkExecutor", "SlinkyThreadPool", "PjitFunction", "CommonPjRt", "Wait", "Rendezvous", "end:", "$", "[")


def op_events(xspace_file: Path):
    """(name, nanoseconds) of every XLA op the trace holds: the GPU's "XLA Ops" lines (or its
    streams' kernels), or on a CPU the XLA threads' op events less the runtime's spans. A CPU
    collective (`all-reduce`) counts its wait for the other devices."""
    data = jax.profiler.ProfileData.from_file(str(xspace_file))
    planes = [p for p in data.planes if p.name.startswith("/device:GPU")]
    if planes:
        lines = [line for p in planes for line in p.lines if line.name == "XLA Ops"]
        lines = lines or [line for p in planes for line in p.lines if line.name.startswith("Stream")]
        keep = lambda name: True  # noqa: E731
    else:
        lines = [line for line in data.find_plane_with_name("/host:CPU").lines if line.name.startswith("tf_XLA")]
        keep = lambda name: not name.startswith(RUNTIME) and "(" not in name  # noqa: E731
    for line in lines:
        for event in line.events:
            if keep(event.name):
                yield event.name, event.duration_ns


def kind(name: str) -> str:
    return re.sub(r"[._]\d+$", "", name)


def profile(cfg: ModelConfig, B: int, L: int, steps: int) -> dict[str, tuple[float, float]]:
    """{op kind: (ms per step, ops per step)} over `steps` traced steps after 3 untraced ones."""
    run, args = vs_torch.jax_trainer(cfg, B), vs_torch.batch(cfg, B, L)
    for _ in range(3):
        float(run(*args))
    with tempfile.TemporaryDirectory() as trace_dir:
        with jax.profiler.trace(trace_dir):
            for _ in range(steps):
                loss = run(*args)
            float(loss)
        (xspace,) = Path(trace_dir).rglob("*.xplane.pb")
        totals: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
        for name, ns in op_events(xspace):
            totals[kind(name)][0] += ns / 1e6 / steps
            totals[kind(name)][1] += 1 / steps
    return {k: (ms, n) for k, (ms, n) in totals.items()}


def table(results: dict[str, dict[str, tuple[float, float]]], top: int) -> str:
    dtypes = list(results)
    order = sorted(
        {k for r in results.values() for k in r}, key=lambda k: -max(r.get(k, (0, 0))[0] for r in results.values())
    )
    head = "| op kind | " + " | ".join(f"{d}: ms/step (ops)" for d in dtypes) + " |"
    rows = [head, "|---" * (len(dtypes) + 1) + "|"]
    for k in order[:top]:
        cells = [f"{r[k][0]:.3f} ({r[k][1]:.0f})" if k in r else "–" for r in results.values()]
        rows.append(f"| `{k}` | " + " | ".join(cells) + " |")
    totals = [f"**{sum(ms for ms, _ in r.values()):.3f}**" for r in results.values()]
    return "\n".join(rows + ["| all ops | " + " | ".join(totals) + " |"])


def dtype_names(text: str) -> tuple[str, ...]:
    names = tuple(text.split(","))
    unknown = [n for n in names if n not in DTYPES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown dtype {unknown[0]!r}; choose from {', '.join(DTYPES)}")
    return names


def main() -> None:
    p = Parser(prog="python benchmarks/op_profile.py", description=__doc__)
    p.add_argument("--mixer", choices=mixers.available(), default="standard")
    p.add_argument("--shape", type=vs_torch.shape, default=(256, 512, 32), help="D,L,batch")
    p.add_argument("--dtypes", type=dtype_names, default=("float32", "bfloat16"), help="comma-separated compute dtypes")
    p.add_argument("--dropout", type=float, default=0.1, help="in [0, 1)")
    p.add_argument("--steps", type=int_at_least(1), default=10, help="traced steps")
    p.add_argument("--top", type=int_at_least(1), default=20, help="rows of the table")
    args = p.parse_args()
    if not 0.0 <= args.dropout < 1.0:
        p.error(f"argument --dropout: must be in [0, 1), got {args.dropout}")
    vs_torch.start(p.prog)  # as vs_torch times it: one jax device per core, host memory kept
    D, L, B = args.shape
    results = {}
    for dtype in args.dtypes:
        cfg = ModelConfig(mixer=args.mixer, dim=D, max_len=L, vocab_size=32, dtype=dtype, dropout=args.dropout)
        results[dtype] = profile(cfg, B, L, args.steps)
    device = jax.devices()[0]
    print(
        f"# Training step by XLA op: {args.mixer}, D {D}, L {L}, batch {B}, dropout {args.dropout}; "
        f"{device.device_kind}, jax {jax.__version__}\n"
    )
    print(table(results, args.top))


if __name__ == "__main__":
    main()
