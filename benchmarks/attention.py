"""Time one forward + backward pass of every registered mixer in every form (the mixing alone:
given q, k, v of shape [batch, L, heads, D/heads] and the mixer's aux inputs), on whatever
backend jax runs, through the registry (`jaxdp.models.mixers`).

    python benchmarks/attention.py                          # L = 128 512 2048 8192, D = 256
    python benchmarks/attention.py --lengths 2048 --repeats 3 --mixers window gated

Each mixer runs with its default options at that L (sparse: B = 2^floor(log2 sqrt L), k = c = 1;
window: w = 2B; chunked forms: chunk 64). Prints one table per mixer, milliseconds per form, and
each form's time over the reference form's (the first).
"""

from __future__ import annotations

import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxdp.args import Parser
from jaxdp.models import ModelConfig, Transformer, mixers


def time_forward_backward(fn, args, repeats: int) -> float:
    """Median seconds of one jitted forward + backward (gradients w.r.t. q, k, v)."""
    step = jax.jit(jax.grad(lambda q, k, v, aux: jnp.sum(fn(q, k, v, aux) ** 2), argnums=(0, 1, 2)))
    jax.block_until_ready(step(*args))  # compile and warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(step(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def inputs(cfg: ModelConfig, batch: int, L: int):
    """q, k, v and aux of a real attention layer of `cfg` on random inputs."""
    attn = Transformer(cfg.replace(num_layers=1), rngs=nnx.Rngs(0)).blocks[0].attn
    x = jnp.asarray(np.random.default_rng(0).normal(size=(batch, L, cfg.dim)), jnp.float32)
    return (*attn._heads(x), attn._aux(x))


def table(name: str, lengths, dim: int, heads: int, batch: int, repeats: int) -> None:
    """Print one mixer's table as it is measured: ms per form and each form over the reference."""
    forms = mixers.get(name).forms
    print(f"\n{name}:\n\n| L | " + " | ".join(forms) + "".join(f" | {f}/{forms[0]}" for f in forms[1:]) + " |")
    print("|---" * (2 * len(forms)) + "|")
    for L in lengths:
        cfg = ModelConfig(mixer=name, dim=dim, num_heads=heads, max_len=L, vocab_size=2)
        args = inputs(cfg, batch, L)
        ms = {}
        for form in forms:
            c = cfg.replace(options={"form": form})
            ms[form] = 1e3 * time_forward_backward(
                lambda q, k, v, aux, c=c: c.mixer_impl.mix(q, k, v, aux, c), args, repeats
            )
        ratios = "".join(f" | {ms[f] / ms[forms[0]]:.2f}" for f in forms[1:])
        print(f"| {L} | " + " | ".join(f"{ms[f]:.2f}" for f in forms) + ratios + " |", flush=True)


def main() -> None:
    parser = Parser(prog="python benchmarks/attention.py", description=__doc__)
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 512, 2048, 8192])
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--mixers", nargs="+", default=list(mixers.available()), choices=mixers.available())
    args = parser.parse_args()
    if args.dim % args.heads:
        parser.error(f"--dim {args.dim} is not divisible by --heads {args.heads}")
    device = jax.devices()[0]
    print(
        f"# backend {device.platform} ({device.device_kind}), {platform.node()}, jax {jax.__version__}, "
        f"D={args.dim}, heads={args.heads}, batch={args.batch}, float32; "
        f"ms per forward+backward (median of {args.repeats})"
    )
    for name in args.mixers:
        table(name, args.lengths, args.dim, args.heads, args.batch, args.repeats)


if __name__ == "__main__":
    main()
