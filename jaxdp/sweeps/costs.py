"""What a sweep will cost before it starts: its FLOPs (`jaxdp.models.flops`) at the rate of a
training step measured on this machine (`measure_rate`), an order of magnitude printed first.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Sequence
from pathlib import Path

import jax
import numpy as np

from jaxdp.models import flops
from jaxdp.models.config import ModelConfig
from jaxdp.runtime import files
from jaxdp.runtime.files import read_json
from jaxdp.sweeps.grids import Plan
from jaxdp.training.protocol import Protocol, TrainConfig
from jaxdp.training.step import init_state, make_train_step


def measure_rate(folder: str | Path | None = None, keep: bool = True) -> dict[str, float]:
    """`probe_rate`, kept (`keep`) in ``folder/rate.json`` (a sweep's compile cache) for this
    machine's backend, devices, cores and jax version: a rerun, a shard or a sibling sweep reads
    it instead of probing again (a few seconds on a CPU)."""
    key = {
        "backend": jax.default_backend(),
        "devices": [d.device_kind for d in jax.devices()],
        "cores": os.cpu_count(),
        "jax": jax.__version__,
    }
    path = Path(folder) / "rate.json" if folder is not None else None
    kept = read_json(path) if path is not None else None
    if kept is not None and kept.get("key") == key and isinstance(kept.get("rate"), dict):
        return kept["rate"]
    rate = probe_rate()
    if path is not None and keep:
        try:
            files.write_json(path, {"key": key, "rate": rate})
        except OSError:  # a read-only cache: measure again next time
            pass
    return rate


@functools.lru_cache(maxsize=1)
def probe_rate(steps: int = 4) -> dict[str, float]:
    """FLOP/s of the real training step on this machine, from a probe model (standard, D = 128,
    3 layers, L = 64, batch 32), and the seconds its first call took (compilation). Measured
    once per process."""
    config = ModelConfig(mixer="standard", dim=128, max_len=64, vocab_size=20)
    train_config = TrainConfig(epochs=1, batch_size=32, warmup_epochs=0)
    graphdef, tx, state = init_state(config, train_config, steps_per_epoch=steps + 1)
    step = make_train_step(graphdef, tx)
    tokens = np.ones((32, 64), np.int32)
    prompt_len, length = np.full(32, 8, np.int32), np.full(32, 64, np.int32)
    started = time.perf_counter()
    state, loss = step(state, tokens, prompt_len, length)
    jax.block_until_ready(loss)
    compile_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(steps):
        state, loss = step(state, tokens, prompt_len, length)
    jax.block_until_ready(loss)
    per_step = (time.perf_counter() - started) / steps
    return {
        "flops_per_s": flops.train_flops(config, 64) * 32 / per_step,
        "compile_seconds": compile_seconds,
        "backend": jax.default_backend(),
    }


def estimate(plans: Sequence[Plan], protocol: Protocol, rate: dict[str, float]) -> dict[str, float]:
    """The sweep's FLOPs (training: 3 × forward per example and epoch, the whole budget even where
    the stopping rule may end a run sooner; evaluation: greedy decoding of the examples scored)
    and the time they take at the measured `rate`, plus a compile per
    cell. An order of magnitude: small models run below the probe's rate, large ones above."""
    train = evaluation = 0.0
    for p in plans:
        L = p.task.max_len
        train += flops.train_flops(p.model_config, L) * p.train_examples * protocol.train.epochs
        scored = (
            min(protocol.train.eval_examples or protocol.test_examples, protocol.test_examples)
            + protocol.valid_examples
        )
        evaluation += flops.decode_flops(p.model_config, L // 2, L) * scored
    seconds = (train + evaluation) / rate["flops_per_s"] + 3 * rate["compile_seconds"] * len(plans)
    return {"train_flops": train, "eval_flops": evaluation, "seconds": seconds}


def describe_estimate(numbers: dict[str, float], rate: dict[str, float], cells: int) -> str:
    hours = numbers["seconds"] / 3600
    when = (
        f"{hours / 24:.0f} days"
        if hours >= 48
        else f"{hours:.1f} h"
        if hours >= 1
        else f"{max(numbers['seconds'] / 60, 1):.0f} min"
    )
    return (
        f"estimated cost: {cells} cells, {numbers['train_flops'] / 1e15:.3g} PFLOP training + "
        f"{numbers['eval_flops'] / 1e15:.3g} PFLOP decoding, about {when} on this {rate['backend']} "
        f"(measured {rate['flops_per_s'] / 1e9:.0f} GFLOP/s on a probe training step; an order of magnitude)"
    )
