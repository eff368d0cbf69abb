"""Where a training step's time goes, and the best ratio to torch that the dense matmuls allow.

For each of `vs_torch.TRAIN_SHAPES`, times in one run (interleaved, medians):
  * jaxdp's real training step (`make_train_step`, dropout 0.1), and torch eager's (the twin);
  * the step's matrix products alone, forward and backward (per layer the q/k/v, output and two
    FFN maps, the read-out head, each as its forward product and the two of its gradient, and
    the attention's batched score and mix products, 3x each), in jax (jitted) and in torch;
  * the bound: a jax step cannot take less than its products, so jaxdp/torch-eager tokens/s is
    at most (torch step) / (jax products).

    python benchmarks/step_profile.py      # needs the bench extra (torch); about 5 minutes
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vs_torch  # noqa: E402  (the twin and the trainers)


def products(D: int, L: int, B: int, layers: int = 3, heads: int = 4, vocab: int = 24):
    """(a, b) shapes of every matrix product of one training step: [M, K] @ [K, N] as (M, K, N),
    and the batched attention products as (batch, M, K, N)."""
    M = B * L
    dense = []
    for _ in range(layers):
        for k, n in ((D, 3 * D), (D, D), (D, 4 * D), (4 * D, D)):
            dense += [(M, k, n), (M, n, k), (k, M, n)]  # forward, d input, d weight
    dense += [(M, D, vocab), (M, vocab, D), (D, M, vocab)]
    K = D // heads
    batched = [(B * heads, L, K, L), (B * heads, L, L, K)] * 3 * layers  # scores and mix, fwd + 2 grads
    return dense, batched


def jax_products(dense, batched):
    rng = np.random.default_rng(0)
    dense_in = [
        (jnp.asarray(rng.normal(size=(m, k)), jnp.float32), jnp.asarray(rng.normal(size=(k, n)), jnp.float32))
        for m, k, n in dense
    ]
    batch_in = [
        (jnp.asarray(rng.normal(size=(b, m, k)), jnp.float32), jnp.asarray(rng.normal(size=(b, k, n)), jnp.float32))
        for b, m, k, n in batched
    ]
    run = jax.jit(lambda d, b: sum(jnp.sum(x @ y) for x, y in d) + sum(jnp.sum(x @ y) for x, y in b))
    return lambda: float(run(dense_in, batch_in))


def torch_products(dense, batched):
    import torch

    torch.manual_seed(0)
    pairs = [(torch.randn(m, k), torch.randn(k, n)) for m, k, n in dense]
    pairs += [(torch.randn(b, m, k), torch.randn(b, k, n)) for b, m, k, n in batched]
    return lambda: float(sum(float((x @ y).sum()) for x, y in pairs))


def median_time(fn, rounds: int = 7) -> float:
    fn()
    fn()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    print(
        "| D, L, batch | jaxdp step ms | torch step ms | jax products ms | torch products ms | products / jaxdp step "
        "| bound on jaxdp / torch eager |\n|---|---|---|---|---|---|---|"
    )
    for D, L, B in vs_torch.TRAIN_SHAPES:
        cfg = vs_torch.train_model(D, L)
        args = vs_torch.batch(cfg, B, L)
        steps = {"jaxdp": vs_torch.jax_trainer(cfg, B), "torch": vs_torch.torch_trainer(cfg, False)}
        step_s = vs_torch.median_seconds(steps, args, steps=3, rounds=5)
        dense, batched = products(D, L, B)
        jp, tp = median_time(jax_products(dense, batched)), median_time(torch_products(dense, batched))
        print(
            f"| {D}, {L}, {B} | {1e3 * step_s['jaxdp']:.1f} | {1e3 * step_s['torch']:.1f} | {1e3 * jp:.1f} | "
            f"{1e3 * tp:.1f} | {jp / step_s['jaxdp']:.0%} | {step_s['torch'] / jp:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
