"""The training loop of one run: steps from the latest good checkpoint, a metrics line every
`log_every` steps (``metrics.jsonl`` and the loggers that mirror it), checkpoints, the stopping
rule's validation checks (`jaxdp.training.stopping`) and the periodic evaluation. SIGINT and
SIGTERM stop it between steps with a checkpoint of the last one (`jaxdp.runtime.interrupts`)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh
from tqdm.auto import tqdm

from jaxdp.models import ModelConfig
from jaxdp.runtime import faults, interrupts
from jaxdp.runtime.devices import replicate
from jaxdp.runtime.errors import TrainingError
from jaxdp.tasks.dataset import Dataset
from jaxdp.training import loggers, stopping
from jaxdp.training.batches import batch_indices, batch_length, prefetch, put_batch
from jaxdp.training.checkpoint import Checkpoints
from jaxdp.training.metrics import MetricsLog
from jaxdp.training.protocol import TrainConfig
from jaxdp.training.step import TrainState, init_state, learning_rate, load_model, make_train_step

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


def fit(
    run_dir: Path,
    model_config: ModelConfig,
    train_config: TrainConfig,
    train_set: Dataset,
    mesh: Mesh,
    steps_per_epoch: int,
    report: Reporting,
    valid_set: Dataset | None,
    *,
    progress: bool,
    stop_after: int | None,
):
    """The training loop from the latest good checkpoint; returns (graphdef, state, steps done,
    the loss of the last logged window, why the stopping rule stopped it or None, the seconds
    spent training over every launch: this one's and those its checkpoint's meta carries)."""
    clock = Clock()
    graphdef, tx, state = init_state(model_config, train_config, steps_per_epoch)
    state = replicate(state, mesh)
    checkpoints = Checkpoints(run_dir, keep=train_config.keep_checkpoints, run_digest=report.config["digest"])
    try:
        start, pending, last_loss, checks = 0, [], None, []
        found = checkpoints.restore_latest(state)
        if found is not None:
            start, state, meta = found
            pending, last_loss, checks = read_checkpoint_meta(meta, clock)
        total = train_config.epochs * steps_per_epoch
        end = total if stop_after is None else min(total, stop_after)
        log = MetricsLog(
            run_dir / "metrics.jsonl", start, mirrors=loggers.open_all(report.log_to, run_dir, report.config)
        )
        loop = Loop(
            run_dir,
            train_config,
            train_set,
            mesh,
            steps_per_epoch,
            checkpoints,
            log,
            progress,
            f"{model_config.mixer} D={model_config.dim}",
            (graphdef, report),
            valid_set,
            clock,
        )
        try:
            state, last_loss, done = loop.run(
                make_train_step(graphdef, tx), state, start, end, pending, last_loss, checks
            )
        finally:
            log.close()
    finally:
        checkpoints.close()
    return graphdef, state, done, last_loss, stopping.reason(checks, train_config), clock.seconds()


@dataclasses.dataclass
class Clock:
    """Seconds a run has trained: `before` this launch (its checkpoint's meta) and since `started`."""

    before: float = 0.0
    started: float = dataclasses.field(default_factory=time.perf_counter)

    def seconds(self) -> float:
        return self.before + time.perf_counter() - self.started


def checkpoint_meta(losses: list[float], last_loss: float | None, checks: list, clock: Clock) -> dict:
    """What a checkpoint keeps beside the state: the losses not yet logged, the last logged one,
    the stopping rule's checks and the seconds trained so far."""
    return {"pending": losses, "last_loss": last_loss, "checks": list(checks), "train_seconds": clock.seconds()}


def read_checkpoint_meta(meta: dict, clock: Clock) -> tuple[list, float | None, list]:
    """`checkpoint_meta` read back: (pending losses, last loss, checks); its seconds become
    `clock.before`."""
    clock.before = float(meta.get("train_seconds", 0.0))
    return list(meta.get("pending", [])), meta.get("last_loss"), list(meta.get("checks", []))


class Loop:
    """Steps, logging and checkpointing of one call of `fit`, between safe points."""

    def __init__(
        self,
        run_dir,
        train_config,
        train_set,
        mesh,
        steps_per_epoch,
        checkpoints,
        log,
        progress,
        name,
        evaluation: tuple[nnx.GraphDef, Reporting],
        valid_set: Dataset | None = None,
        clock: Clock | None = None,
    ):
        self.run_dir, self.config, self.train_set, self.mesh = run_dir, train_config, train_set, mesh
        self.steps_per_epoch, self.checkpoints, self.log = steps_per_epoch, checkpoints, log
        self.progress, self.name = progress, name
        self.graphdef, report = evaluation
        every = report.eval_every if report.test_set is not None else None
        self.eval_steps, self.test_set = (every * steps_per_epoch if every else None), report.test_set
        self.lr = learning_rate(train_config, steps_per_epoch)
        self.valid_set, self.clock = valid_set, clock or Clock()

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
        bar = tqdm(
            total=total,
            initial=start,
            disable=not self.progress,
            desc=self.name,
            unit="step",
            dynamic_ncols=True,
            leave=False,
        )
        done, saved = start, start
        window_time = time.perf_counter()
        batches = prefetch(self.batch, range(start, end))
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
                    if (
                        done % cfg.checkpoint_every == 0 or done == end or checked
                    ):  # a check's score is kept with its step
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
        where = (
            f"the last good checkpoint is step {good[-1]} in {self.run_dir / 'checkpoints'}"
            if good
            else "no checkpoint was saved before that"
        )
        return TrainingError(f"loss became {value} by step {done}; {where}")

    def write_line(self, done: int, pending: list, window_time: float, bar) -> float:
        values = np.asarray(jax.device_get(jnp.stack([jnp.asarray(x, jnp.float32) for x in pending])))
        if not np.all(np.isfinite(values)):
            raise self.diverged(done, values[~np.isfinite(values)][0])
        T = self.train_set.tokens.shape[1]
        seconds = max(time.perf_counter() - window_time, 1e-9)
        line = {
            "step": done,
            "epoch": done / self.steps_per_epoch,
            "loss": float(values.mean()),
            "lr": float(self.lr(done - 1)),
            "tokens_per_s": len(values) * self.config.batch_size * T / seconds,
        }
        self.log.write(line)
        bar.set_postfix(loss=f"{line['loss']:.4f}", tok_s=f"{line['tokens_per_s']:,.0f}")
        return line["loss"]

    def write_eval(self, done: int, state) -> None:
        """Greedy scores of the first `EVAL_EVERY_EXAMPLES` test examples, as one metrics line."""
        from jaxdp.evaluation.evaluate import evaluate

        scores = evaluate(
            load_model(self.graphdef, state),
            self.test_set,
            batch_size=self.config.eval_batch_size,
            limit=EVAL_EVERY_EXAMPLES,
        )
        self.log.write(
            {
                "step": done,
                "epoch": done / self.steps_per_epoch,
                **{f"eval_{k}": v for k, v in scores.items() if k != "examples"},
            }
        )

    def check(self, done: int, state) -> float:
        score, line = validation_check(self.graphdef, state, self.valid_set, self.config, done, self.steps_per_epoch)
        self.log.write(line)
        return score

    def save(self, done: int, state, pending: list, last_loss, checks: list) -> None:
        losses = [float(x) for x in jax.device_get(pending)]
        if not np.all(np.isfinite(losses)):
            raise self.diverged(done, next(x for x in losses if not np.isfinite(x)))
        self.checkpoints.save(done, state, checkpoint_meta(losses, last_loss, checks, self.clock))


def validation_check(
    graphdef: nnx.GraphDef, state: TrainState, valid_set: Dataset, config: TrainConfig, done: int, steps_per_epoch: int
) -> tuple[float, dict]:
    """The stopping rule's score after step `done`: greedy accuracy on the first
    `check_examples` validation examples, and its metrics line."""
    from jaxdp.evaluation.evaluate import evaluate

    scores = evaluate(
        load_model(graphdef, state), valid_set, batch_size=config.eval_batch_size, limit=config.check_examples
    )
    return scores["accuracy"], {
        "step": done,
        "epoch": done / steps_per_epoch,
        "valid_accuracy": scores["accuracy"],
        "valid_loss": scores["loss"],
    }
