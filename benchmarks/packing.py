"""Packed training (`jaxdp.training.pack`) against the same runs one by one: tokens per second.

    python benchmarks/packing.py                                   # CPU: D 32, 64 at LIS L 37, 83
    python benchmarks/packing.py --dims 32 64 128 256 --sizes 17 40 250 --replicas 8   # a GPU

One by one: the training step `jaxdp.training` uses (one model, one device). Packed: K replicas in
one vmapped step (`jaxdp.training.pack.make_packed_step`). Both on one device, both after a warm-up step;
the ratio is (K × tokens per packed step / its time) over (tokens per step / its time), so 1.0
means packing gains nothing and K means the pack costs what one run does.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxdp import tasks
from jaxdp.models import ModelConfig
from jaxdp.training import pack
from jaxdp.training.protocol import TrainConfig
from jaxdp.training.step import init_state, make_train_step, optimizer


def timed(step, state, args, steps: int) -> float:
    """Seconds per call of `step` after one warm-up call (which compiles it)."""
    state, loss = step(state, *args)
    jax.block_until_ready(loss)
    started = time.perf_counter()
    for _ in range(steps):
        state, loss = step(state, *args)
    jax.block_until_ready(loss)
    return (time.perf_counter() - started) / steps


def measure(dim: int, size: int, replicas: int, batch: int, steps: int, model: str) -> dict:
    task = tasks.get("lis", size)
    config = ModelConfig(mixer=model, dim=dim, max_len=task.max_len, vocab_size=len(task.vocab))
    train_config = TrainConfig(epochs=1, batch_size=batch, warmup_epochs=0, lr=1e-3)
    T = task.max_len
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, len(task.vocab), (batch, T)).astype(np.int32)
    prompt_len, length = np.full(batch, T // 2, np.int32), np.full(batch, T, np.int32)
    graphdef, tx, state = init_state(config, train_config, steps + 2)
    alone = timed(make_train_step(graphdef, tx), state, (tokens, prompt_len, length), steps)
    states = pack.stack(
        [
            init_state(config, TrainConfig(**{**train_config.to_dict(), "seed": k}), steps + 2)[2]
            for k in range(replicas)
        ]
    )
    unit = optimizer(TrainConfig(**{**train_config.to_dict(), "lr": 1.0}), steps + 2)
    stacked = [jnp.asarray(np.stack([a] * replicas)) for a in (tokens, prompt_len, length)]
    lrs, active = jnp.full(replicas, 1e-3, jnp.float32), jnp.ones(replicas, bool)
    packed = timed(pack.make_packed_step(graphdef, unit), states, (lrs, active, *stacked), steps)
    one_rate, pack_rate = batch * T / alone, replicas * batch * T / packed
    return {
        "model": model,
        "D": dim,
        "L": T - 1,
        "K": replicas,
        "batch": batch,
        "alone": one_rate,
        "packed": pack_rate,
        "ratio": pack_rate / one_rate,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dims", nargs="+", type=int, default=[32, 64])
    p.add_argument("--sizes", nargs="+", type=int, default=[17, 40], help="LIS sizes (L = 2·size + 3: 37, 83)")
    p.add_argument("--replicas", type=int, default=8)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--mixer", default="standard")
    args = p.parse_args()
    device = jax.devices()[0]
    print(
        f"jax {jax.__version__} on {device.platform} ({device.device_kind}); batch {args.batch}, "
        f"{args.steps} timed steps each, {args.mixer}\n"
    )
    print("| model | D | L | K | tokens/s one by one | tokens/s packed | packed / one by one |")
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes:
        for dim in args.dims:
            r = measure(dim, size, args.replicas, args.batch, args.steps, args.mixer)
            print(
                f"| {r['model']} | {r['D']} | {r['L']} | {r['K']} | {r['alone']:,.0f} | {r['packed']:,.0f} | "
                f"{r['ratio']:.2f}× |",
                flush=True,
            )


if __name__ == "__main__":
    main()
