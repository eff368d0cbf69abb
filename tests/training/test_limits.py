"""`jaxdp.training.limits`: the memory estimate that refuses runs must never exceed what the real
training step needs, or it would refuse a run that fits."""

import numpy as np
import pytest

from jaxdp.models import ModelConfig, mixers
from jaxdp.runtime import capacity
from jaxdp.training import limits
from jaxdp.training.protocol import TrainConfig
from jaxdp.training.step import init_state, make_train_step

pytestmark = pytest.mark.integration  # trains, runs commands or compiles whole models


@pytest.mark.parametrize("mixer", mixers.available())
def test_the_training_estimate_is_below_what_xla_allocates_for_the_step(mixer):
    """XLA's own accounting of the compiled `train` step (its arguments, the parameters and
    AdamW state, plus its temporaries) against `training_bytes`, on every registered mixer."""
    B, T = 8, 32
    config = ModelConfig(mixer=mixer, dim=32, num_layers=1, max_len=T, vocab_size=20, dropout=0.0)
    graphdef, tx, state = init_state(config, TrainConfig(epochs=1, batch_size=B, warmup_epochs=0), 4)
    tokens, prompt_len, length = np.ones((B, T), np.int32), np.full(B, 4, np.int32), np.full(B, T, np.int32)
    compiled = make_train_step(graphdef, tx).lower(state, tokens, prompt_len, length).compile()
    used = compiled.memory_analysis().argument_size_in_bytes + compiled.memory_analysis().temp_size_in_bytes
    assert limits.training_bytes(config, B, T) <= used
    assert limits.training_bytes(config, B, T) > used / 4  # and not a trivial bound


def test_describe_reads_like_a_person_would():
    assert [capacity.describe(x) for x in (512, 1536, 3 * 2**30, 2.5 * 2**60)] == [
        "512 B",
        "1.5 KiB",
        "3 GiB",
        "2.5 EiB",
    ]
