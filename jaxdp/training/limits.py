"""What a run needs of this machine, checked before anything is written or compiled.

A run is refused in one line when it cannot fit: when its step count overflows the optimizer's
int32 step counter (`check_steps`), or when training its model needs more memory than the
machine has (`check_training_memory`; a dataset's need is `jaxdp.runtime.capacity`'s). The
memory needed is a lower estimate (what must be held at once, whatever XLA does), so a refusal is
never wrong; a run that passes and still runs out of memory is stopped by
`jaxdp.runtime.capacity.out_of_memory`'s one line.
"""

from __future__ import annotations

import numpy as np

from jaxdp.runtime import capacity
from jaxdp.runtime.capacity import refuse_above
from jaxdp.runtime.errors import JaxdpError

#: optax counts steps in int32
MAX_STEPS = 2**31 - 1


def training_bytes(model_config, batch_size: int, seq_len: int) -> int:
    """At least what training holds at once: parameters, gradients and AdamW's two moments
    (4 copies of every parameter), and the activations the backward pass keeps, at least the
    inputs of every layer's products (4·D + 2·F numbers a token), what its mixer keeps
    (`Mixer.kept_per_token`) and the logits (2·V)."""
    from jaxdp.models.flops import param_count

    c = model_config
    mixer = sum(layer.mixer_impl.kept_per_token(layer, seq_len) for layer in c.layers())  # e.g. per-chunk matrices
    per_token = (c.num_layers * (4 * c.dim + 2 * c.hidden_dim) + mixer) * _itemsize(c.dtype) + 2 * c.vocab_size * 4
    return 4 * param_count(c) * _itemsize(c.param_dtype) + batch_size * seq_len * per_token


def _itemsize(dtype: str) -> int:
    """Bytes of one number of a `ModelConfig` dtype (numpy has no bfloat16 of its own)."""
    return 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize


def check_training_memory(model_config, batch_size: int, seq_len: int, replicas: int = 1) -> None:
    """Refuse to train `model_config` on batches of `batch_size` sequences of `seq_len` tokens
    where `training_bytes` exceed the device's memory; `replicas` packed ones (`jaxdp.training.pack`)
    each hold all of it."""
    c = model_config
    packed = f" in {replicas} packed replicas" if replicas > 1 else ""
    refuse_above(
        replicas * training_bytes(c, batch_size, seq_len),
        f"training D={c.dim} ({c.num_layers} layers, length {seq_len}) at batch {batch_size}{packed}",
        "the dim, batch_size or num_layers" + (" or --pack" if packed else ""),
    )


#: `training_bytes` is a lower bound, about half of what XLA holds (tests/training/test_limits.py): a pack
#: is sized to hold this many times it
PACK_MARGIN = 3


def replicas_that_fit(model_config, batch_size: int, seq_len: int, most: int) -> int:
    """How many packed replicas (at most `most`, at least 1) fit the device with `PACK_MARGIN`."""
    have, _ = capacity.device_memory()
    per = PACK_MARGIN * training_bytes(model_config, batch_size, seq_len)
    return max(1, min(most, have // max(per, 1)))


def check_steps(train_config, train_examples: int) -> None:
    steps = train_config.epochs * (int(train_examples) // train_config.batch_size)
    if steps > MAX_STEPS:
        raise JaxdpError(
            f"TrainConfig.epochs: {train_config.epochs} epochs of {train_examples} examples at batch "
            f"{train_config.batch_size} are {steps:.3g} steps; at most {MAX_STEPS} (the optimizer "
            "counts steps in int32): lower epochs or the training examples"
        )
