"""Training as in the paper (§6.1): AdamW (0.9, 0.999, lr 1e-4, weight decay 0.01 on weight
matrices and embeddings, none on biases and norms), 5 warm-up epochs then linear decay to 0,
batch 512, next-token NLL on the CoT, answer and `<eos>`; the settings are `jaxdp.protocol`'s.

One jitted step in the functional NNX pattern: the model is split once into a graph definition
and pure pytrees (parameters, dropout RNG state), merged inside the step. The batch is sharded
along a ``data`` mesh axis (`data_mesh`: all devices, or on one host the most that divide the
batch, a CPU's cores among them, `jaxdp.devices`) and the state is replicated (data parallel; on
many hosts call `jax.distributed.initialize()` first, see README). A background thread gathers and
transfers the next batches while the device works.

A run lives in a folder: ``protocol.json`` (its identity, whose digest `jaxdp.protocol.run_path`
names the folder by), ``config.json``, ``metrics.jsonl`` (one line per `log_every` steps),
``checkpoints/`` (orbax) and ``result.json`` (written last, atomically). Running the same
command again resumes from the latest checkpoint, and a finished run returns its result.
"""

from __future__ import annotations

import contextlib
import functools
import dataclasses
import json
import queue
import threading
import time
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from tqdm.auto import tqdm
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxdp import __version__, faults, interrupts, limits, loggers, stopping
from jaxdp.checkpoint import Checkpoints, check_run_config, run_lock, write_json_atomic
from jaxdp.devices import batch_devices, batch_mesh, replicate
from jaxdp.errors import CheckpointError, TrainingError, first_line, warn
from jaxdp.metrics import MetricsLog
from jaxdp.models import ModelConfig, Transformer
from jaxdp.protocol import EVALUATION, MECHANICS, SCHEDULES, TrainConfig, digest, run_identity
from jaxdp.tasks.dataset import Dataset, validation_excludes

__all__ = ["SCHEDULES", "TrainConfig", "TrainState", "restore_checkpoint", "restore_model", "run_config", "train"]


class TrainState(NamedTuple):
    params: Any  # pure dict of nnx.Param values
    opt_state: Any
    rest: Any  # pure dict of the other model state (dropout RNG keys and counts)


# --------------------------------------------------------------------------------- optimizer


def learning_rate(config: TrainConfig, steps_per_epoch: int) -> optax.Schedule:
    """Linear warm-up from 0 over `warmup_epochs`, then linear decay to 0 at the last step."""
    if config.schedule == "constant":
        return optax.constant_schedule(config.lr)
    total = config.epochs * steps_per_epoch
    warmup = round(config.warmup_epochs * steps_per_epoch)
    decay = optax.linear_schedule(config.lr, 0.0, max(total - warmup, 1))
    if warmup == 0:
        return decay
    return optax.join_schedules([optax.linear_schedule(0.0, config.lr, warmup), decay], [warmup])


def optimizer(config: TrainConfig, steps_per_epoch: int) -> optax.GradientTransformation:
    """AdamW; weight decay only on leaves with two or more axes (weights, embedding)."""
    decay_mask = lambda params: jax.tree.map(lambda x: x.ndim >= 2, params)  # noqa: E731
    return optax.adamw(learning_rate(config, steps_per_epoch), b1=config.b1, b2=config.b2,
                       weight_decay=config.weight_decay, mask=decay_mask)  # fmt: skip


# ------------------------------------------------------------------------------------- steps


def loss_mask(prompt_len_B, length_B, T: int):
    """[B, T] targets: the CoT, the answer and <eos> (positions prompt_len .. length-1)."""
    i = jnp.arange(T)[None, :]
    return (i >= prompt_len_B[:, None]) & (i < length_B[:, None])


def nll(model: Transformer, tokens_BxT, prompt_len_B, length_B):
    """Mean next-token NLL over the masked targets: logits at t predict the token at t + 1."""
    tokens_BxT = tokens_BxT.astype(jnp.int32)
    logits = model(tokens_BxT)[:, :-1].astype(jnp.float32)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, tokens_BxT[:, 1:])
    mask = loss_mask(prompt_len_B, length_B, tokens_BxT.shape[1])[:, 1:]
    return jnp.sum(losses * mask) / jnp.maximum(jnp.sum(mask), 1)


def split_model(model: Transformer) -> tuple[nnx.GraphDef, Any, Any]:
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    return graphdef, nnx.to_pure_dict(params), nnx.to_pure_dict(rest)


def loss_and_grads(graphdef: nnx.GraphDef, state: TrainState, tokens, prompt_len, length):
    """((loss, the model's other state after the step), gradients w.r.t. the parameters)."""

    def loss_fn(params, rest):
        model = nnx.merge(graphdef, params, rest)
        loss = nll(model, tokens, prompt_len, length)
        return loss, nnx.to_pure_dict(nnx.state(model, nnx.Not(nnx.Param)))

    return jax.value_and_grad(loss_fn, has_aux=True)(state.params, state.rest)


def make_train_step(graphdef: nnx.GraphDef, tx: optax.GradientTransformation):
    """(state, tokens, prompt_len, length) -> (state, loss), jitted once per shape. The input
    state's buffers are donated (updated in place): do not use a state after passing it in."""

    @functools.partial(jax.jit, donate_argnums=0)
    def step(state: TrainState, tokens, prompt_len, length):
        (loss, rest), grads = loss_and_grads(graphdef, state, tokens, prompt_len, length)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        return TrainState(optax.apply_updates(state.params, updates), opt_state, rest), loss

    return step


# -------------------------------------------------------------------------------------- data


def batch_indices(num_examples: int, batch_size: int, seed: int, step: int,
                  lengths: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """Rows of the batch at `step`: epoch e = step // steps_per_epoch walks a permutation drawn
    from (seed, e); the last partial batch of an epoch is dropped. A function of the step alone,
    so a resumed run sees exactly the batches it would have seen.

    With `lengths` (length bucketing), the epoch's rows (the same random rows, the partial
    batch dropped first) are sorted by length and cut into batches of neighbouring lengths, and
    the batches are taken in a random order: each example still comes once per epoch, and a
    batch of short examples can be cut short (`batch_length`)."""
    steps_per_epoch = num_examples // batch_size
    epoch, index = divmod(step, steps_per_epoch)
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(num_examples)
    if lengths is None:
        return order[index * batch_size:(index + 1) * batch_size]
    kept = order[:steps_per_epoch * batch_size]
    batches = kept[np.argsort(lengths[kept], kind="stable")].reshape(steps_per_epoch, batch_size)
    return batches[rng.permutation(steps_per_epoch)[index]]


def batch_length(lengths_B: np.ndarray, max_len: int) -> int:
    """Positions a batch needs: its longest example rounded up to a multiple of max_len/8 (itself
    a multiple of 8), so that at most 8 shapes compile, and at most the dataset's `max_len`.
    Positions past an example's length are padding: causal mixers never let them reach earlier
    positions, and the loss masks them, so the cut batch has the loss of the padded one
    (tests/test_fast_paths.py)."""
    bucket = 8 * -(-max_len // 64)
    return min(max_len, -(-int(lengths_B.max()) // bucket) * bucket)


def _prefetch(make, steps: range, depth: int = 2) -> Iterator:
    """Yield make(step) for each step, computed `depth` steps ahead in a background thread."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def worker():
        try:
            for step in steps:
                if stop.is_set():
                    return
                q.put(make(step))
        except BaseException as e:  # hand errors to the consumer
            q.put(e)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    try:
        for _ in steps:
            item = q.get()
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a worker waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)


def data_mesh(batch_size: int, devices=None) -> Mesh:
    """The 1-D ``data`` mesh: over `devices`; by default over all devices of all processes, or,
    in one process, over the most of them that divide the batch (`jaxdp.devices.batch_devices`:
    a CPU split into one device per core by `jaxdp.devices.use_cpu_cores`)."""
    if devices is None:
        devices = jax.devices() if jax.process_count() > 1 else batch_devices(batch_size)
    return batch_mesh(devices)


def put_batch(arrays: tuple[np.ndarray, ...], mesh: Mesh) -> tuple[jax.Array, ...]:
    """Shard a global batch along the ``data`` axis. With several processes each process passes
    the whole global batch and contributes its own contiguous slice."""
    sharding = NamedSharding(mesh, PartitionSpec("data"))
    if jax.process_count() == 1:
        return tuple(jax.device_put(a, sharding) for a in arrays)
    n, p = jax.process_count(), jax.process_index()
    local = [a[p * len(a) // n:(p + 1) * len(a) // n] for a in arrays]
    return tuple(jax.make_array_from_process_local_data(sharding, part, whole.shape)
                 for part, whole in zip(local, arrays))  # fmt: skip


# ----------------------------------------------------------------------------------- the run

#: Fields of a run's config.json that may change between launches of the same run.
NOT_IDENTITY = frozenset({"digest", "data.dir", *(f"train.{name}" for name in MECHANICS + EVALUATION)})


def run_config(identity: dict, train_config: TrainConfig, train_set: Dataset, data_dir: str | None = None) -> dict:
    """config.json: the run's identity (`jaxdp.protocol.run_identity`) as task and model, its
    digest, the whole TrainConfig, and the training set's record (content digest included) and
    folder."""
    return {"digest": digest(identity), "task": identity["task"], "model": identity["model"],
            "train": train_config.to_dict(), "data": {"train": train_set.record(), "dir": data_dir}}  # fmt: skip


def evaluation_record(test_set: Dataset | None, train_config: TrainConfig, valid_set: Dataset | None = None) -> dict | None:
    """What a result's scores depend on besides the trained parameters."""
    if test_set is None:
        return None
    record = {"test": test_set.record(), "eval_examples": train_config.eval_examples}
    if valid_set is not None:
        record["valid"] = valid_set.record()
    return record


def check_settings(task, model_config: ModelConfig, train_config: TrainConfig, train_set: Dataset,
                   num_devices: int = 1) -> int:  # fmt: skip
    """Refuse settings that cannot work, before any compile; returns steps per epoch."""
    train_set.check("training set")
    if model_config.vocab_size != len(task.vocab):
        raise TrainingError(f"ModelConfig.vocab_size: {model_config.vocab_size}, but {task} has "
                            f"{len(task.vocab)} tokens")  # fmt: skip
    if model_config.max_len < task.max_len:
        raise TrainingError(f"ModelConfig.max_len: {model_config.max_len} < {task}'s max_len {task.max_len}")
    if train_set.task != task:
        raise TrainingError(f"training set holds {train_set.task}, expected {task}")
    if train_config.batch_size > len(train_set):
        raise TrainingError(f"TrainConfig.batch_size: {train_config.batch_size} > {len(train_set)} training examples")
    if train_config.batch_size % num_devices:
        raise TrainingError(f"TrainConfig.batch_size: {train_config.batch_size} is not divisible by the "
                            f"{num_devices} devices of the data-parallel mesh")  # fmt: skip
    limits.check_steps(train_config, len(train_set))
    limits.check_training_memory(model_config, train_config.batch_size, train_set.tokens.shape[1])
    return len(train_set) // train_config.batch_size


def init_state(model_config: ModelConfig, train_config: TrainConfig, steps_per_epoch: int):
    model = Transformer(model_config, rngs=nnx.Rngs(train_config.seed))
    graphdef, params, rest = split_model(model)
    tx = optimizer(train_config, steps_per_epoch)
    return graphdef, tx, TrainState(params, tx.init(params), rest)


def train(run_dir: str | Path, task, model_config: ModelConfig, train_config: TrainConfig, train_set: Dataset,
          test_set: Dataset | None = None, *, progress: bool = True, stop_after: int | None = None,
          devices=None, data_dir: str | None = None, log_to: Sequence[str] = (),
          eval_every: int | None = None, valid_set: Dataset | None = None) -> dict:  # fmt: skip
    """Train (or resume) the run in `run_dir`, evaluate on `test_set`, write ``result.json``.

    With a `valid_set` (`jaxdp.tasks.dataset.build_validation`: drawn apart from both training
    and test sets), the result also holds its scores under ``valid``: what a study's choices
    read. The stopping rule (`jaxdp.stopping`, ``check_every``) needs one; the result says why
    the run stopped (``stop_reason``: solved, plateau or budget).

    The folder records the run's config (``config.json``) and identity (``protocol.json``); a
    folder holding another identity or another training set is refused with the differing fields
    named, and one that another process is working on raises `RunBusy`. A finished run returns
    its result; if it was scored on another test set or another `eval_examples` (or its
    result.json is unreadable), it is scored again from its final checkpoint, without training.
    SIGINT and SIGTERM stop the loop between steps with a checkpoint of the last one
    (`jaxdp.interrupts`); the call then raises `Interrupted`, and the next call resumes.

    `stop_after` ends the call after that many steps in total, with a checkpoint, as an
    interruption would (the next call resumes); the result is then ``{"stopped_at": step}``.
    `devices` sets the data-parallel mesh (default: `data_mesh`'s); `data_dir` is recorded in
    the config so that `python -m jaxdp eval` can find the test set. `log_to` names loggers that
    mirror ``metrics.jsonl`` (`jaxdp.loggers`: tensorboard, wandb); every `eval_every` epochs the
    first `EVAL_EVERY_EXAMPLES` test examples are decoded and their scores logged as ``eval_*``.
    Neither changes the run's identity or its result.
    """
    run_dir = Path(run_dir)
    mesh = data_mesh(train_config.batch_size, devices)
    steps_per_epoch = check_settings(task, model_config, train_config, train_set, mesh.size)
    check_test_set(task, train_set, test_set)
    check_valid_set(task, train_config, train_set, test_set, valid_set)
    identity = run_identity(task, model_config, train_config, len(train_set), train_set.seed,
                            len(test_set) if test_set is not None else None)  # fmt: skip
    with run_lock(run_dir):
        config = run_config(identity, train_config, train_set, data_dir)
        check_run_config(run_dir, config, ignore=NOT_IDENTITY)
        write_json_atomic(run_dir / "protocol.json", identity)
        evaluation = evaluation_record(test_set, train_config, valid_set)
        result = read_result(run_dir / "result.json")
        if result is not None and result.get("evaluation") == evaluation:
            return result
        started = time.perf_counter()
        report = Reporting(config, tuple(log_to), eval_every, test_set)
        with stop_on_out_of_memory("training", "batch_size or dim"):
            graphdef, state, end, final_loss, reason = _fit(run_dir, model_config, train_config, train_set, mesh,
                                                            steps_per_epoch, report, valid_set, progress=progress,
                                                            stop_after=stop_after)  # fmt: skip
        if reason is None and end < train_config.epochs * steps_per_epoch:
            return {"stopped_at": end}
        if result is None:
            result = {"steps": end, "train_seconds": time.perf_counter() - started, "jaxdp": __version__,
                      "final_loss": final_loss, "stop_reason": reason or "budget"}  # fmt: skip
        if test_set is not None:
            result.update(final_scores(graphdef, state, train_config, test_set, valid_set, progress))
        result["evaluation"] = evaluation
        write_json_atomic(run_dir / "result.json", result)
        return result


@contextlib.contextmanager
def stop_on_out_of_memory(doing: str, lower: str) -> Iterator[None]:
    """An allocation failure inside the block becomes one `TrainingError` line naming the
    settings to lower (the run keeps its last checkpoint)."""
    try:
        yield
    except Exception as e:
        if not limits.out_of_memory(e):
            raise
        raise TrainingError(f"out of memory while {doing} ({first_line(e) or type(e).__name__}); lower {lower}, "
                            "then run the same command to resume") from None  # fmt: skip


def final_scores(graphdef, state, train_config: TrainConfig, test_set: Dataset, valid_set: Dataset | None,
                 progress: bool) -> dict:  # fmt: skip
    """The test set's scores (the first ``eval_examples``), and the whole validation set's as ``valid``."""
    from jaxdp.evaluate import evaluate

    model, out = load_model(graphdef, state), {}
    with stop_on_out_of_memory("scoring the test set", "eval_batch_size"):
        out.update(evaluate(model, test_set, batch_size=train_config.eval_batch_size, limit=train_config.eval_examples,
                            progress=progress))  # fmt: skip
        if valid_set is not None:
            out["valid"] = evaluate(model, valid_set, batch_size=train_config.eval_batch_size)
    return out


def check_valid_set(task, train_config: TrainConfig, train_set: Dataset, test_set: Dataset | None,
                    valid_set: Dataset | None) -> None:  # fmt: skip
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
        raise TrainingError("the validation set was not drawn apart from this training and test set "
                            "(jaxdp.tasks.dataset.build_validation)")  # fmt: skip
    if train_config.check_every is not None and len(valid_set) < train_config.check_examples:
        raise TrainingError(f"TrainConfig.check_examples: {train_config.check_examples} > the validation set's "
                            f"{len(valid_set)} examples")  # fmt: skip


def check_test_set(task, train_set: Dataset, test_set: Dataset | None) -> None:
    """A test set of the same task, drawn apart from this training set (same seed; where its
    header records the training set it excludes, that one)."""
    if test_set is None:
        return
    test_set.check("test set")
    if test_set.task != task:
        raise TrainingError(f"test set holds {test_set.task}, expected {task}")
    if test_set.seed != train_set.seed or test_set.excludes not in (None, train_set.digest):
        raise TrainingError(f"the test set was built with another training set (seed {test_set.seed}, training "
                            f"seed {train_set.seed}): its examples may overlap the training set's; build both together")  # fmt: skip


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


#: how many test examples (the first ones) the periodic evaluation of ``eval_every`` decodes
EVAL_EVERY_EXAMPLES = 200


@dataclasses.dataclass(frozen=True)
class Reporting:
    """What a run reports while it trains, besides ``metrics.jsonl``: the loggers that mirror it
    and the periodic evaluation (`train`'s `log_to` and `eval_every`)."""

    config: dict
    log_to: tuple[str, ...] = ()
    eval_every: int | None = None
    test_set: Dataset | None = None


def _fit(run_dir: Path, model_config: ModelConfig, train_config: TrainConfig, train_set: Dataset, mesh: Mesh,
         steps_per_epoch: int, report: Reporting, valid_set: Dataset | None, *, progress: bool,
         stop_after: int | None):  # fmt: skip
    """The training loop from the latest good checkpoint; returns (graphdef, state, steps done,
    the loss of the last logged window, why the stopping rule stopped it or None)."""
    graphdef, tx, state = init_state(model_config, train_config, steps_per_epoch)
    state = replicate(state, mesh)
    checkpoints = Checkpoints(run_dir, keep=train_config.keep_checkpoints, run_digest=report.config["digest"])
    try:
        start, pending, last_loss, checks = 0, [], None, []
        found = checkpoints.restore_latest(state)
        if found is not None:
            start, state, meta = found
            pending, last_loss, checks = list(meta.get("pending", [])), meta.get("last_loss"), list(meta.get("checks", []))
        total = train_config.epochs * steps_per_epoch
        end = total if stop_after is None else min(total, stop_after)
        log = MetricsLog(run_dir / "metrics.jsonl", start, mirrors=loggers.open_all(report.log_to, run_dir, report.config))
        loop = _Loop(run_dir, train_config, train_set, mesh, steps_per_epoch, checkpoints, log, progress,
                     f"{model_config.attention} D={model_config.dim}", (graphdef, report), valid_set)  # fmt: skip
        try:
            state, last_loss, done = loop.run(make_train_step(graphdef, tx), state, start, end, pending, last_loss, checks)
        finally:
            log.close()
    finally:
        checkpoints.close()
    return graphdef, state, done, last_loss, stopping.reason(checks, train_config)


class _Loop:
    """Steps, logging and checkpointing of one call of `_fit`, between safe points."""

    def __init__(self, run_dir, train_config, train_set, mesh, steps_per_epoch, checkpoints, log, progress, name,
                 evaluation: tuple[nnx.GraphDef, Reporting], valid_set: Dataset | None = None):  # fmt: skip
        self.run_dir, self.config, self.train_set, self.mesh = run_dir, train_config, train_set, mesh
        self.steps_per_epoch, self.checkpoints, self.log = steps_per_epoch, checkpoints, log
        self.progress, self.name = progress, name
        self.graphdef, report = evaluation
        every = report.eval_every if report.test_set is not None else None
        self.eval_steps, self.test_set = (every * steps_per_epoch if every else None), report.test_set
        self.lr = learning_rate(train_config, steps_per_epoch)
        self.valid_set = valid_set

    def batch(self, step: int):
        t, cfg = self.train_set, self.config
        lengths = t.length if cfg.bucket_by_length else None
        rows = batch_indices(len(t), cfg.batch_size, cfg.seed, step, lengths)
        T = batch_length(t.length[rows], t.tokens.shape[1]) if cfg.bucket_by_length else t.tokens.shape[1]
        return put_batch((t.tokens[rows, :T], t.prompt_len[rows], t.length[rows]), self.mesh)

    def run(self, step_fn, state, start: int, end: int, pending: list, last_loss, checks: list):
        """Steps start..end, unless the stopping rule stops them first (it appends each check's
        score to `checks`); returns (state, last logged loss, steps done)."""
        cfg, total = self.config, self.config.epochs * self.steps_per_epoch
        if stopping.reason(checks, cfg):  # stopped before the last launch ended
            end = start
        bar = tqdm(total=total, initial=start, disable=not self.progress, desc=self.name, unit="step",
                   dynamic_ncols=True, leave=False)  # fmt: skip
        done, saved = start, start
        window_time = time.perf_counter()
        batches = _prefetch(self.batch, range(start, end))
        try:
            with interrupts.deferred() as stop:
                for step, batch in zip(range(start, end), batches):
                    if stop.signal_name:
                        break
                    if step == start:
                        faults.point("train.compile")
                    state, loss = step_fn(state, *batch)
                    done = step + 1
                    pending.append(loss)
                    bar.update(1)
                    faults.point("train.step")
                    checked = bool(cfg.check_every) and done % cfg.check_every == 0
                    if checked:
                        checks.append(self.check(done, state))
                    stops = checked and stopping.reason(checks, cfg) is not None
                    if done % cfg.log_every == 0 or done == end or stops:
                        last_loss = self.write_line(done, pending, window_time, bar)
                        pending, window_time = [], time.perf_counter()
                    if done % cfg.checkpoint_every == 0 or done == end or checked:  # a check's score is kept with its step
                        self.save(done, state, pending, last_loss, checks)
                        saved = done
                    if self.eval_steps and done % self.eval_steps == 0:
                        self.write_eval(done, state)
                    if stops:
                        break
                if done > saved:  # stopped between checkpoints: keep what was done
                    self.save(done, state, pending, last_loss, checks)
                stop.check()
        finally:
            batches.close()
            bar.close()
        return state, last_loss, done

    def diverged(self, done: int, value: float) -> TrainingError:
        good = self.checkpoints.steps()  # saving refuses non-finite parameters: these are good
        where = (f"the last good checkpoint is step {good[-1]} in {self.run_dir / 'checkpoints'}" if good
                 else "no checkpoint was saved before that")  # fmt: skip
        return TrainingError(f"loss became {value} by step {done}; {where}")

    def write_line(self, done: int, pending: list, window_time: float, bar) -> float:
        values = np.asarray(jax.device_get(jnp.stack([jnp.asarray(x, jnp.float32) for x in pending])))
        if not np.all(np.isfinite(values)):
            raise self.diverged(done, values[~np.isfinite(values)][0])
        T = self.train_set.tokens.shape[1]
        seconds = max(time.perf_counter() - window_time, 1e-9)
        line = {"step": done, "epoch": done / self.steps_per_epoch, "loss": float(values.mean()),
                "lr": float(self.lr(done - 1)), "tokens_per_s": len(values) * self.config.batch_size * T / seconds}  # fmt: skip
        self.log.write(line)
        bar.set_postfix(loss=f"{line['loss']:.4f}", tok_s=f"{line['tokens_per_s']:,.0f}")
        return line["loss"]

    def write_eval(self, done: int, state) -> None:
        """Greedy scores of the first `EVAL_EVERY_EXAMPLES` test examples, as one metrics line."""
        from jaxdp.evaluate import evaluate

        scores = evaluate(load_model(self.graphdef, state), self.test_set, batch_size=self.config.eval_batch_size,
                          limit=EVAL_EVERY_EXAMPLES)  # fmt: skip
        self.log.write({"step": done, "epoch": done / self.steps_per_epoch,
                        **{f"eval_{k}": v for k, v in scores.items() if k != "examples"}})  # fmt: skip

    def check(self, done: int, state) -> float:
        score, line = validation_check(self.graphdef, state, self.valid_set, self.config, done, self.steps_per_epoch)
        self.log.write(line)
        return score

    def save(self, done: int, state, pending: list, last_loss, checks: list) -> None:
        losses = [float(x) for x in jax.device_get(pending)]
        if not np.all(np.isfinite(losses)):
            raise self.diverged(done, next(x for x in losses if not np.isfinite(x)))
        self.checkpoints.save(done, state, {"pending": losses, "last_loss": last_loss, "checks": list(checks)})


def validation_check(graphdef: nnx.GraphDef, state: TrainState, valid_set: Dataset, config: TrainConfig, done: int,
                     steps_per_epoch: int) -> tuple[float, dict]:  # fmt: skip
    """The stopping rule's score after step `done`: greedy accuracy on the first
    `check_examples` validation examples, and its metrics line."""
    from jaxdp.evaluate import evaluate

    scores = evaluate(load_model(graphdef, state), valid_set, batch_size=config.eval_batch_size,
                      limit=config.check_examples)  # fmt: skip
    return scores["accuracy"], {"step": done, "epoch": done / steps_per_epoch, "valid_accuracy": scores["accuracy"],
                                "valid_loss": scores["loss"]}  # fmt: skip


def load_model(graphdef: nnx.GraphDef, state: TrainState) -> Transformer:
    """The trained model (eval mode) from a training state."""
    model = nnx.merge(graphdef, jax.device_get(state.params), jax.device_get(state.rest))
    model.eval()
    return model


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
