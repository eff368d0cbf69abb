"""Length bucketing on arithmetic's mixed 1..n-operator training set: examples/s of the real
training step (`jaxdp.training.step.make_train_step`) on the batches `train` feeds it, padded (the
paper's random batches, every one as long as the buffer) against bucketed (`bucket_by_length`:
neighbouring lengths, each batch cut by `batch_length`). One warm-up epoch compiles every shape;
the next epoch is timed, the two modes interleaved batch by batch.

    python benchmarks/bucketing.py              # arithmetic(10), D 128, about 3 minutes on 2 cores
    python benchmarks/bucketing.py --size 6
"""

from __future__ import annotations

import platform
import time

import jax

from jaxdp import tasks
from jaxdp.args import Parser, int_at_least
from jaxdp.models import ModelConfig
from jaxdp.tasks.builder import build
from jaxdp.training.batches import batch_indices, batch_length
from jaxdp.training.protocol import TrainConfig
from jaxdp.training.step import init_state, make_train_step


def batches(train_set, batch_size: int, epoch: int, bucketed: bool):
    steps = len(train_set) // batch_size
    lengths = train_set.length if bucketed else None
    for step in range(epoch * steps, (epoch + 1) * steps):
        rows = batch_indices(len(train_set), batch_size, 0, step, lengths)
        T = batch_length(train_set.length[rows], train_set.tokens.shape[1]) if bucketed else train_set.tokens.shape[1]
        yield train_set.tokens[rows, :T], train_set.prompt_len[rows], train_set.length[rows]


def main() -> None:
    p = Parser(prog="python benchmarks/bucketing.py", description=__doc__)
    p.add_argument("--size", type=int_at_least(1), default=10, help="operators n (default 10)")
    p.add_argument("--examples", type=int_at_least(64), default=2048, help="training examples (default 2048)")
    p.add_argument("--batch-size", type=int_at_least(1), default=64)
    p.add_argument("--dim", type=int_at_least(8), default=128)
    args = p.parse_args()
    task = tasks.get("arithmetic", args.size)
    train_set, _ = build(task, args.examples, 16, seed=0, progress=False)
    cfg = ModelConfig(mixer="standard", dim=args.dim, max_len=task.max_len, vocab_size=len(task.vocab))
    tc = TrainConfig(epochs=2, batch_size=args.batch_size, warmup_epochs=0, schedule="constant")
    modes = {}
    for bucketed in (False, True):
        graphdef, tx, state = init_state(cfg, tc, steps_per_epoch=len(train_set) // args.batch_size)
        modes[bucketed] = [make_train_step(graphdef, tx), state, 0.0]
        for batch in batches(train_set, args.batch_size, 0, bucketed):  # compile every shape
            modes[bucketed][1], loss = modes[bucketed][0](modes[bucketed][1], *batch)
        jax.block_until_ready(loss)
    for pair in zip(batches(train_set, args.batch_size, 1, False), batches(train_set, args.batch_size, 1, True)):
        for bucketed, batch in zip((False, True), pair):
            step, state, _ = modes[bucketed]
            start = time.perf_counter()
            state, loss = step(state, *batch)
            jax.block_until_ready(loss)
            modes[bucketed][1] = state
            modes[bucketed][2] += time.perf_counter() - start
    n = (len(train_set) // args.batch_size) * args.batch_size
    padded, bucketed = n / modes[False][2], n / modes[True][2]
    mean_len = float(train_set.length.mean())
    print(
        f"# {platform.node()}, jax {jax.__version__} ({jax.default_backend()}), float32; {task}, "
        f"{args.examples} examples (mean length {mean_len:.0f} of {task.max_len}), "
        f"D {args.dim}, batch {args.batch_size}"
    )
    print("| arithmetic training | examples/s |\n|---|---|")
    print(f"| padded to {task.max_len} | {padded:,.1f} |\n| bucketed by length | {bucketed:,.1f} |")
    print(f"| speed-up | {bucketed / padded:.2f}x |")


if __name__ == "__main__":
    main()
