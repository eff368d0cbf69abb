"""Time one forward + backward pass of every attention kernel and form (the attention mixing
alone: given q, k, v of shape [batch, L, heads, D/heads]), on whatever backend jax runs.

    python benchmarks/attention.py                      # L = 128 512 2048 8192, D = 256
    python benchmarks/attention.py --lengths 128 512 --repeats 3

Sparse uses B = 2^floor(log2 sqrt L), k = c = 1; chunked linear uses chunk 64. Prints a table of
milliseconds and the fast/reference ratios (blocked/masked, chunked/quadratic, scan/quadratic).
"""

from __future__ import annotations

import argparse
import functools
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxdp.models import attention as kernels
from jaxdp.models.config import default_block_size

FORMS = ("standard", "sparse_masked", "sparse_blocked", "linear_quadratic", "linear_chunked", "linear_scan")


def kernel(name: str, L: int, chunk: int):
    fn = getattr(kernels, name)
    if name.startswith("sparse"):
        return functools.partial(fn, block_size=default_block_size(L), local_blocks=1, global_tokens=1)
    if name == "linear_chunked":
        return functools.partial(fn, chunk_size=chunk)
    return fn


def time_forward_backward(fn, q, k, v, repeats: int) -> float:
    """Median seconds of one jitted forward + backward (gradients w.r.t. q, k, v)."""
    step = jax.jit(jax.grad(lambda q, k, v: jnp.sum(fn(q, k, v) ** 2), argnums=(0, 1, 2)))
    jax.block_until_ready(step(q, k, v))  # compile and warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(step(q, k, v))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 512, 2048, 8192])
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--forms", nargs="+", default=list(FORMS), choices=FORMS)
    args = parser.parse_args()
    if args.dim % args.heads:
        parser.error(f"--dim {args.dim} is not divisible by --heads {args.heads}")

    device = jax.devices()[0]
    print(f"# backend {device.platform} ({device.device_kind}), {platform.node()}, jax {jax.__version__}, "
          f"D={args.dim}, heads={args.heads}, batch={args.batch}, float32; ms per forward+backward (median of {args.repeats})")  # fmt: skip
    print("| L | " + " | ".join(args.forms) + " | blocked/masked | chunked/quadratic | scan/quadratic |")
    print("|---" * (len(args.forms) + 4) + "|")
    rng = np.random.default_rng(0)
    for L in args.lengths:
        shape = (args.batch, L, args.heads, args.dim // args.heads)
        q, k, v = (jnp.asarray(rng.normal(size=shape), jnp.float32) for _ in range(3))
        ms = {name: 1e3 * time_forward_backward(kernel(name, L, args.chunk), q, k, v, args.repeats) for name in args.forms}
        ratio = lambda a, b: f"{ms[a] / ms[b]:.2f}" if a in ms and b in ms else "–"  # noqa: E731
        cells = " | ".join(f"{ms[n]:.2f}" for n in args.forms)
        print(f"| {L} | {cells} | {ratio('sparse_blocked', 'sparse_masked')} | "
              f"{ratio('linear_chunked', 'linear_quadratic')} | {ratio('linear_scan', 'linear_quadratic')} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
