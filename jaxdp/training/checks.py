"""Settings a run refuses before any compile, each in one line naming the field: a model that
does not fit its task, a batch that does not fit the data or the mesh, test and validation sets
not drawn apart from the training set; and out-of-memory errors turned into the settings to lower."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from jaxdp.models import ModelConfig
from jaxdp.runtime import capacity
from jaxdp.runtime.errors import TrainingError, first_line
from jaxdp.tasks.dataset import Dataset, validation_excludes
from jaxdp.training import limits
from jaxdp.training.protocol import TrainConfig


def check_settings(
    task, model_config: ModelConfig, train_config: TrainConfig, train_set: Dataset, num_devices: int = 1
) -> int:
    """Refuse settings that cannot work, before any compile; returns steps per epoch."""
    train_set.check("training set")
    if model_config.vocab_size != len(task.vocab):
        raise TrainingError(
            f"ModelConfig.vocab_size: {model_config.vocab_size}, but {task} has {len(task.vocab)} tokens"
        )
    if model_config.max_len < task.max_len:
        raise TrainingError(f"ModelConfig.max_len: {model_config.max_len} < {task}'s max_len {task.max_len}")
    if train_set.task != task:
        raise TrainingError(f"training set holds {train_set.task}, expected {task}")
    if train_config.batch_size > len(train_set):
        raise TrainingError(f"TrainConfig.batch_size: {train_config.batch_size} > {len(train_set)} training examples")
    if train_config.batch_size % num_devices:
        raise TrainingError(
            f"TrainConfig.batch_size: {train_config.batch_size} is not divisible by the "
            f"{num_devices} devices of the data-parallel mesh"
        )
    limits.check_steps(train_config, len(train_set))
    limits.check_training_memory(model_config, train_config.batch_size, train_set.tokens.shape[1])
    return len(train_set) // train_config.batch_size


def check_valid_set(
    task, train_config: TrainConfig, train_set: Dataset, test_set: Dataset | None, valid_set: Dataset | None
) -> None:
    """A validation set of the same task, drawn apart from this training and test set, and
    there when the stopping rule needs one."""
    if valid_set is None:
        if train_config.check_every is not None:
            raise TrainingError("TrainConfig.check_every: the stopping rule reads a validation set; none was given")
        return
    valid_set.check("validation set")
    if test_set is None:
        raise TrainingError("a validation set was given without its test set")
    if valid_set.task != task or valid_set.excludes != validation_excludes(train_set, test_set):
        raise TrainingError(
            "the validation set was not drawn apart from this training and test set "
            "(jaxdp.tasks.builder.build_validation)"
        )
    if train_config.check_every is not None and len(valid_set) < train_config.check_examples:
        raise TrainingError(
            f"TrainConfig.check_examples: {train_config.check_examples} > the validation set's "
            f"{len(valid_set)} examples"
        )


def check_test_set(task, train_set: Dataset, test_set: Dataset | None) -> None:
    """A test set of the same task, drawn apart from this training set (same seed; where its
    header records the training set it excludes, that one)."""
    if test_set is None:
        return
    test_set.check("test set")
    if test_set.task != task:
        raise TrainingError(f"test set holds {test_set.task}, expected {task}")
    if test_set.seed != train_set.seed or test_set.excludes not in (None, train_set.digest):
        raise TrainingError(
            f"the test set was built with another training set (seed {test_set.seed}, training "
            f"seed {train_set.seed}): its examples may overlap the training set's; build both together"
        )


@contextlib.contextmanager
def stop_on_out_of_memory(doing: str, lower: str) -> Iterator[None]:
    """An allocation failure inside the block becomes one `TrainingError` line naming the
    settings to lower (the run keeps its last checkpoint)."""
    try:
        yield
    except Exception as e:
        if not capacity.out_of_memory(e):
            raise
        raise TrainingError(
            f"out of memory while {doing} ({first_line(e) or type(e).__name__}); lower {lower}, "
            "then run the same command to resume"
        ) from None
