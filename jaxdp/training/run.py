"""One training run in its folder: train or resume it, score it, write its result; restore its model.

A run lives in a folder: ``protocol.json`` (its identity, whose digest `jaxdp.training.protocol.run_path`
names the folder by), ``config.json``, ``metrics.jsonl`` (one line per `log_every` steps),
``checkpoints/`` (orbax) and ``result.json`` (written last, atomically). Running the same
command again resumes from the latest checkpoint, and a finished run returns its result; if it
was scored on another test set or another `eval_examples` (or its result.json is unreadable), it
is scored again from its final checkpoint, without training. A folder holding another identity
or another training set is refused with the differing fields named, and one that another
process is working on raises `RunBusy`. SIGINT and SIGTERM stop the loop between steps with a
checkpoint of the last one (`jaxdp.runtime.interrupts`); `train` then raises `Interrupted`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from jax.sharding import Mesh

from jaxdp import __version__
from jaxdp.models import ModelConfig, Transformer
from jaxdp.runtime.errors import CheckpointError, TrainingError, warn
from jaxdp.tasks.dataset import Dataset
from jaxdp.training.batches import data_mesh
from jaxdp.training.checkpoint import Checkpoints, check_run_config, run_lock, write_json_atomic
from jaxdp.training.checks import check_settings, check_test_set, check_valid_set, stop_on_out_of_memory
from jaxdp.training.loop import Reporting, fit
from jaxdp.training.protocol import EVALUATION, MECHANICS, TrainConfig, digest, run_identity
from jaxdp.training.step import init_state, load_model

#: Fields of a run's config.json that may change between launches of the same run.
NOT_IDENTITY = frozenset({"digest", "data.dir", *(f"train.{name}" for name in MECHANICS + EVALUATION)})


def run_config(identity: dict, train_config: TrainConfig, train_set: Dataset, data_dir: str | None = None) -> dict:
    """config.json: the run's identity (`jaxdp.training.protocol.run_identity`) as task and model, its
    digest, the whole TrainConfig, and the training set's record (content digest included) and
    folder."""
    return {
        "digest": digest(identity),
        "task": identity["task"],
        "model": identity["model"],
        "train": train_config.to_dict(),
        "data": {"train": train_set.record(), "dir": data_dir},
    }


def evaluation_record(
    test_set: Dataset | None, train_config: TrainConfig, valid_set: Dataset | None = None
) -> dict | None:
    """What a result's scores depend on besides the trained parameters."""
    if test_set is None:
        return None
    record = {"test": test_set.record(), "eval_examples": train_config.eval_examples}
    if valid_set is not None:
        record["valid"] = valid_set.record()
    return record


def train(
    run_dir: str | Path,
    task,
    model_config: ModelConfig,
    train_config: TrainConfig,
    train_set: Dataset,
    test_set: Dataset | None = None,
    *,
    progress: bool = True,
    stop_after: int | None = None,
    devices=None,
    data_dir: str | None = None,
    log_to: Sequence[str] = (),
    eval_every: int | None = None,
    valid_set: Dataset | None = None,
) -> dict:
    """Train (or resume) the run in `run_dir`, evaluate on `test_set`, write ``result.json``
    (the folder, its refusals and its resumption: this module's docstring).

    With a `valid_set` (`jaxdp.tasks.builder.build_validation`), the result also holds its scores
    under ``valid``: what a study's choices read. The stopping rule (`jaxdp.training.stopping`,
    ``check_every``) needs one; ``stop_reason`` says why the run stopped (solved, plateau or
    budget). `stop_after` ends the call after that many steps in total, with a checkpoint, as an
    interruption would; the result is then ``{"stopped_at": step}``. `devices` sets the
    data-parallel mesh (default: `data_mesh`'s); `data_dir` is recorded so that ``python -m jaxdp
    eval`` finds the test set. `log_to` names loggers that mirror ``metrics.jsonl``
    (`jaxdp.training.loggers`); every `eval_every` epochs the first `EVAL_EVERY_EXAMPLES` test
    examples are decoded and logged as ``eval_*``. Neither changes the run's identity or result.
    """
    run_dir = Path(run_dir)
    mesh, steps_per_epoch = checked_mesh(task, model_config, train_config, train_set, test_set, valid_set, devices)
    test_count = len(test_set) if test_set is not None else None
    identity = run_identity(task, model_config, train_config, len(train_set), train_set.seed, test_count)
    with run_lock(run_dir):
        config = run_config(identity, train_config, train_set, data_dir)
        check_run_config(run_dir, config, ignore=NOT_IDENTITY)
        write_json_atomic(run_dir / "protocol.json", identity)
        evaluation = evaluation_record(test_set, train_config, valid_set)
        result = read_result(run_dir / "result.json")
        if result is not None and result.get("evaluation") == evaluation:
            return result
        report = Reporting(config, tuple(log_to), eval_every, test_set)
        with stop_on_out_of_memory("training", "batch_size or dim"):
            job = (run_dir, model_config, train_config, train_set, mesh, steps_per_epoch, report, valid_set)
            graphdef, state, end, final_loss, reason, seconds = fit(*job, progress=progress, stop_after=stop_after)
        if reason is None and end < train_config.epochs * steps_per_epoch:
            return {"stopped_at": end}
        if result is None:
            result = first_result(end, seconds, final_loss, reason)
        if test_set is not None:
            result.update(final_scores(graphdef, state, train_config, test_set, valid_set, progress))
        result["evaluation"] = evaluation
        write_json_atomic(run_dir / "result.json", result)
        return result


def checked_mesh(task, model_config, train_config, train_set, test_set, valid_set, devices) -> tuple[Mesh, int]:
    """The data mesh and the steps per epoch, once every setting and data set is checked."""
    mesh = data_mesh(train_config.batch_size, devices)
    steps_per_epoch = check_settings(task, model_config, train_config, train_set, mesh.size)
    check_test_set(task, train_set, test_set)
    check_valid_set(task, train_config, train_set, test_set, valid_set)
    return mesh, steps_per_epoch


def first_result(steps: int, seconds: float, final_loss: float | None, reason: str | None) -> dict:
    """A finished run's result.json before its scores."""
    record = {"steps": steps, "train_seconds": seconds, "jaxdp": __version__, "final_loss": final_loss}
    return record | {"stop_reason": reason or "budget"}


def final_scores(
    graphdef, state, train_config: TrainConfig, test_set: Dataset, valid_set: Dataset | None, progress: bool
) -> dict:
    """The test set's scores (the first ``eval_examples``), and the whole validation set's as ``valid``."""
    from jaxdp.evaluation.evaluate import evaluate

    model, out = load_model(graphdef, state), {}
    with stop_on_out_of_memory("scoring the test set", "eval_batch_size"):
        out.update(
            evaluate(
                model,
                test_set,
                batch_size=train_config.eval_batch_size,
                limit=train_config.eval_examples,
                progress=progress,
            )
        )
        if valid_set is not None:
            out["valid"] = evaluate(model, valid_set, batch_size=train_config.eval_batch_size)
    return out


def read_result(path: Path) -> dict | None:
    """A finished run's result, or None; an unreadable result.json is scored again, with a warning."""
    if not path.exists():
        return None
    try:
        result = json.loads(path.read_text())
        if isinstance(result, dict):
            return result
    except (ValueError, UnicodeDecodeError):
        pass
    warn(f"{path} is unreadable; scoring the run again from its final checkpoint")
    return None


def restore_model(run_dir: str | Path) -> tuple[Transformer, dict]:
    """The model of the latest good checkpoint of a run folder, and the run's config."""
    model, config, _ = restore_checkpoint(run_dir)
    return model, config


def total_steps(config: dict) -> int:
    """The steps a run's config.json asks for (all epochs)."""
    return config["train"]["epochs"] * (config["data"]["train"]["count"] // config["train"]["batch_size"])


def restore_checkpoint(run_dir: str | Path) -> tuple[Transformer, dict, int]:
    """`restore_model`, with the step of the checkpoint restored."""
    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.exists():
        raise TrainingError(f"{run_dir}: not a run folder (no config.json)")
    try:
        config = json.loads(config_path.read_text())
        model_config = ModelConfig.from_dict(config["model"])
        train_config = TrainConfig(**config["train"])
        steps_per_epoch = max(config["data"]["train"]["count"] // train_config.batch_size, 1)
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{config_path}: unreadable or not a run config ({type(e).__name__}: {e})") from None
    graphdef, _, state = init_state(model_config, train_config, steps_per_epoch)
    checkpoints = Checkpoints(run_dir, keep=train_config.keep_checkpoints, run_digest=config.get("digest"))
    try:
        found = checkpoints.restore_latest(state)
    finally:
        checkpoints.close()
    if found is None:
        raise TrainingError(f"{run_dir}: no checkpoint yet")
    return load_model(graphdef, found[1]), config, found[0]
