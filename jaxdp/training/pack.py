"""Packing: several runs of one cell that differ only in seed or learning rate, trained as one
program on an accelerator.

Their parameters, optimizer states and dropout keys are stacked along a leading axis and one
`jax.vmap`ped step updates them all (`make_packed_step`). Each replica keeps everything a run
trained alone has: its own folder, identity and digest, ``config.json``, ``metrics.jsonl``,
checkpoints and ``result.json``; its initialisation (from its seed) and its batches
(`jaxdp.training.batches.batch_indices` of its seed) are the ones it gets alone, so a packed replica and
the same run trained alone differ only by float rounding: the optimizer runs with a unit
learning rate and each replica's update is scaled by its own (AdamW's update is linear in the
learning rate). A replica that the stopping rule (`jaxdp.training.stopping`) stops keeps its state while
the others go on. A pack checkpoints every replica at the same steps; SIGINT/SIGTERM end it with
a checkpoint of each, and the same call resumes it. Replicas found at different steps (a kill
between their saves) finish one by one through `jaxdp.training.run.train`, which resumes each exactly.

It pays where one small model leaves an accelerator idle; on a CPU, whose step is bound by
elementwise work, it gains nothing (`benchmarks/packing.py`), so ``--pack auto`` packs only on
a GPU or TPU. A pack runs on one device.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from tqdm.auto import tqdm

from jaxdp.models import ModelConfig
from jaxdp.runtime import faults, interrupts
from jaxdp.runtime.errors import TrainingError
from jaxdp.tasks.dataset import Dataset
from jaxdp.training import limits, stopping
from jaxdp.training.batches import batch_indices, batch_length
from jaxdp.training.checkpoint import Checkpoints, check_run_config, run_lock, write_json_atomic
from jaxdp.training.checks import check_settings, check_test_set, check_valid_set
from jaxdp.training.loop import Clock, checkpoint_meta, read_checkpoint_meta, validation_check
from jaxdp.training.metrics import MetricsLog
from jaxdp.training.protocol import TrainConfig, run_identity
from jaxdp.training.run import (
    NOT_IDENTITY,
    evaluation_record,
    final_scores,
    first_result,
    read_result,
    run_config,
    train,
)
from jaxdp.training.step import TrainState, init_state, learning_rate, loss_and_grads, optimizer

#: TrainConfig fields in which a pack's replicas may differ
MAY_DIFFER = ("seed", "lr")
#: replicas per pack that ``--pack auto`` asks for on an accelerator
AUTO_SIZE = 8


def auto_size() -> int:
    """``--pack auto``: `AUTO_SIZE` on a GPU or TPU, 1 (no packing) on a CPU, where a packed
    step gains nothing (benchmarks/RESULTS.md, packing)."""
    return AUTO_SIZE if jax.default_backend() in ("gpu", "tpu") else 1


def parse_size(text: str) -> int:
    """``--pack``'s value: auto (`auto_size`), off (1) or a number of replicas >= 1."""
    if text in ("auto", "off"):
        return auto_size() if text == "auto" else 1
    try:
        size = int(text)
    except ValueError:
        raise ValueError(f"--pack takes auto, off or a number of replicas >= 1, got {text!r}") from None
    if size < 1:
        raise ValueError(f"--pack takes auto, off or a number of replicas >= 1, got {size}")
    return size


def make_packed_step(graphdef: nnx.GraphDef, unit_tx: optax.GradientTransformation):
    """(states, lrs, active, tokens, prompt_len, length) -> (states, losses), over K stacked
    replicas: `unit_tx` is the replicas' optimizer at learning rate 1, each replica's update is
    scaled by its `lrs` entry, and a replica with `active` False keeps its state."""

    def one(state: TrainState, lr, active, tokens, prompt_len, length):
        (loss, rest), grads = loss_and_grads(graphdef, state, tokens, prompt_len, length)
        updates, opt_state = unit_tx.update(grads, state.opt_state, state.params)
        updates = jax.tree.map(lambda u: u * lr.astype(u.dtype), updates)
        new = TrainState(optax.apply_updates(state.params, updates), opt_state, rest)
        return jax.tree.map(lambda n, o: jnp.where(active, n, o), new, state), loss

    return jax.jit(jax.vmap(one), donate_argnums=0)


def stack(trees: Sequence) -> object:
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def replica(stacked, index: int):
    return jax.tree.map(lambda x: x[index], stacked)


def shared_settings(config: TrainConfig) -> dict:
    """What every replica of a pack has in common: its TrainConfig but `MAY_DIFFER`."""
    return {k: v for k, v in config.to_dict().items() if k not in MAY_DIFFER}


def check_pack(configs: Sequence[TrainConfig]) -> None:
    """Replicas differ only in `MAY_DIFFER`."""
    base = shared_settings(configs[0])
    for config in configs[1:]:
        other = shared_settings(config)
        if other != base:
            differ = sorted(k for k in base if base[k] != other[k])
            raise TrainingError(
                f"a pack's runs may differ only in {', '.join(MAY_DIFFER)}; these differ in {', '.join(differ)}"
            )


@dataclasses.dataclass
class Replica:
    """One run of a pack: its folder, settings, checkpoints, log and stopping-rule checks."""

    run_dir: Path
    config: TrainConfig
    digest: str
    steps_per_epoch: int
    saved: int = 0  # the step of its latest checkpoint
    checkpoints: Checkpoints | None = None
    log: MetricsLog | None = None
    pending: list = dataclasses.field(default_factory=list)
    last_loss: float | None = None
    checks: list = dataclasses.field(default_factory=list)
    stopped_at: int | None = None  # the step the stopping rule ended it at
    clock: Clock = dataclasses.field(default_factory=Clock)  # the pack's seconds, as each replica's


def train_packed(
    run_dirs: Sequence[str | Path],
    task,
    model_config: ModelConfig,
    configs: Sequence[TrainConfig],
    train_set: Dataset,
    test_set: Dataset,
    *,
    valid_set: Dataset | None = None,
    progress: bool = True,
    data_dir: str | None = None,
    stop_after: int | None = None,
) -> list[dict]:
    """`jaxdp.training.run.train` of each (run_dir, config), as one pack; the results in order (a
    ``{"stopped_at": step}`` for each replica when `stop_after` ends the call first)."""
    check_pack(configs)
    steps_per_epoch = check_settings(task, model_config, configs[0], train_set)
    limits.check_training_memory(model_config, configs[0].batch_size, train_set.tokens.shape[1], len(configs))
    check_test_set(task, train_set, test_set)
    for config in configs:
        check_valid_set(task, config, train_set, test_set, valid_set)
    alone = dict(task=task, model_config=model_config, train_set=train_set, test_set=test_set, valid_set=valid_set)
    alone |= dict(progress=progress, data_dir=data_dir, stop_after=stop_after)  # `train`'s, for a replica alone
    with contextlib.ExitStack() as stack_:
        replicas, results = [], {}
        for k, (run_dir, config) in enumerate(zip(run_dirs, configs)):
            run_dir = Path(run_dir)
            stack_.enter_context(run_lock(run_dir))
            identity = run_identity(task, model_config, config, len(train_set), train_set.seed, len(test_set))
            record = run_config(identity, config, train_set, data_dir)
            check_run_config(run_dir, record, ignore=NOT_IDENTITY)
            write_json_atomic(run_dir / "protocol.json", identity)
            result = read_result(run_dir / "result.json")
            if result is not None and result.get("evaluation") == evaluation_record(test_set, config, valid_set):
                results[k] = result
            else:
                replicas.append((k, Replica(run_dir, config, record["digest"], steps_per_epoch)))
        if replicas:
            done = _Pack(model_config, train_set, valid_set, steps_per_epoch, progress).run(
                [r for _, r in replicas], stop_after
            )
            if done is None:  # replicas at different steps: each finishes alone, which resumes exactly
                stack_.close()
                return [
                    results.get(k) or train(run_dir, train_config=config, **alone)
                    for k, (run_dir, config) in enumerate(zip(run_dirs, configs))
                ]
            graphdef, states, end = done
            for index, (k, r) in enumerate(replicas):
                results[k] = _finish(r, graphdef, replica(states, index), end, test_set, valid_set, progress)
    return [results[k] for k in range(len(configs))]


def _finish(r: Replica, graphdef, state, end: int, test_set: Dataset, valid_set, progress: bool) -> dict:
    """A replica's result.json, as `jaxdp.training.run.train` writes it (or where `end` cut it short, a
    ``{"stopped_at": end}`` to resume from)."""
    steps = r.stopped_at if r.stopped_at is not None else end
    reason = stopping.reason(r.checks, r.config)
    if reason is None and steps < r.config.epochs * r.steps_per_epoch:
        return {"stopped_at": steps}
    result = first_result(steps, r.clock.seconds(), r.last_loss, reason)
    result.update(final_scores(graphdef, state, r.config, test_set, valid_set, progress))
    result["evaluation"] = evaluation_record(test_set, r.config, valid_set)
    write_json_atomic(r.run_dir / "result.json", result)
    return result


class _Pack:
    """The training loop of a pack's replicas, all at the same step, between safe points."""

    def __init__(
        self,
        model_config: ModelConfig,
        train_set: Dataset,
        valid_set: Dataset | None,
        steps_per_epoch: int,
        progress: bool,
    ):
        self.model_config, self.train_set, self.valid_set = model_config, train_set, valid_set
        self.steps_per_epoch, self.progress = steps_per_epoch, progress

    def restore(self, replicas: list[Replica]):
        """(graphdef, unit optimizer, stacked states, start), or None when the replicas' latest
        checkpoints are of different steps."""
        states, starts = [], []
        for r in replicas:
            graphdef, _, state = init_state(self.model_config, r.config, self.steps_per_epoch)
            r.checkpoints = Checkpoints(r.run_dir, keep=r.config.keep_checkpoints, run_digest=r.digest)
            found = r.checkpoints.restore_latest(state)
            step = 0
            if found is not None:
                step, state, meta = found
                r.pending, r.last_loss, r.checks = read_checkpoint_meta(meta, r.clock)
            states.append(state)
            starts.append(step)
        if len(set(starts)) > 1:
            return None
        for r in replicas:
            r.saved = starts[0]
            if stopping.reason(r.checks, r.config):
                r.stopped_at = starts[0]
        unit = optimizer(dataclasses.replace(replicas[0].config, lr=1.0), self.steps_per_epoch)
        return graphdef, unit, stack(states), starts[0]

    def run(self, replicas: list[Replica], stop_after: int | None):
        """Train the pack from its checkpoints; (graphdef, stacked states, steps done), or None
        (`restore`). Closes every replica's checkpoints and log."""
        try:
            restored = self.restore(replicas)
            if restored is None:
                return None
            graphdef, unit, states, start = restored
            for r in replicas:
                r.log = MetricsLog(r.run_dir / "metrics.jsonl", start)
            total = replicas[0].config.epochs * self.steps_per_epoch
            end = total if stop_after is None else min(total, stop_after)
            states, done = self.loop(graphdef, make_packed_step(graphdef, unit), replicas, states, start, end)
            return graphdef, states, done
        finally:
            for r in replicas:
                for part in (r.log, r.checkpoints):
                    if part is not None:
                        part.close()

    def batch(self, replicas: list[Replica], step: int):
        """Each replica's batch at `step` (its own seed's), stacked: [K, B, T], [K, B], [K, B]."""
        t, cfg = self.train_set, replicas[0].config
        lengths = t.length if cfg.bucket_by_length else None
        rows = [batch_indices(len(t), cfg.batch_size, r.config.seed, step, lengths) for r in replicas]
        T = (
            max(batch_length(t.length[x], t.tokens.shape[1]) for x in rows)
            if lengths is not None
            else t.tokens.shape[1]
        )
        return tuple(
            jnp.asarray(np.stack(a))
            for a in ([t.tokens[x, :T] for x in rows], [t.prompt_len[x] for x in rows], [t.length[x] for x in rows])
        )

    def loop(self, graphdef, step_fn, replicas: list[Replica], states, start: int, end: int):
        lrs = jnp.asarray([r.config.lr for r in replicas], jnp.float32)
        bar = tqdm(
            total=end,
            initial=start,
            disable=not self.progress,
            unit="step",
            leave=False,
            dynamic_ncols=True,
            desc=f"pack of {len(replicas)} {self.model_config.mixer} D={self.model_config.dim}",
        )
        done, window = start, time.perf_counter()
        try:
            with interrupts.deferred() as stop:
                for step in range(start, end):
                    live = [r.stopped_at is None for r in replicas]
                    if stop.signal_name or not any(live):
                        break
                    if step == start:
                        faults.point("train.compile")
                    states, losses = step_fn(states, lrs, jnp.asarray(live), *self.batch(replicas, step))
                    done = step + 1
                    bar.update(1)
                    faults.point("train.step")
                    for i, r in enumerate(replicas):
                        if live[i]:
                            self.after_step(
                                graphdef, r, functools.partial(replica, states, i), losses[i], done, end, window
                            )
                    if done % replicas[0].config.log_every == 0:
                        window = time.perf_counter()
                for i, r in enumerate(replicas):
                    if r.saved < (r.stopped_at or done):  # stopped between checkpoints: keep what was done
                        self.save(r, replica(states, i), r.stopped_at or done)
                stop.check()
        finally:
            bar.close()
        return states, done

    def after_step(self, graphdef, r: Replica, state, loss, done: int, end: int, window: float) -> None:
        """One replica's stopping-rule check, log line and checkpoint after step `done`, in the
        order `jaxdp.training` keeps (`state()`: its state)."""
        cfg = r.config
        r.pending.append(loss)
        checked = bool(cfg.check_every) and done % cfg.check_every == 0
        stops = False
        if checked:
            r.checks.append(self.check(graphdef, r, state(), done))
            stops = stopping.reason(r.checks, cfg) is not None
            r.stopped_at = done if stops else None
        if done % cfg.log_every == 0 or done == end or stops:
            self.write_line(r, done, window)
        if checked or done % cfg.checkpoint_every == 0 or done == end:
            self.save(r, state(), done)

    def check(self, graphdef, r: Replica, state, done: int) -> float:
        score, line = validation_check(graphdef, state, self.valid_set, r.config, done, self.steps_per_epoch)
        r.log.write(line)
        return score

    def write_line(self, r: Replica, done: int, window: float) -> None:
        values = np.asarray(jax.device_get(jnp.stack([jnp.asarray(x, jnp.float32) for x in r.pending])))
        if not np.all(np.isfinite(values)):
            raise TrainingError(f"{r.run_dir}: loss became {values[~np.isfinite(values)][0]} by step {done}")
        T, seconds = self.train_set.tokens.shape[1], max(time.perf_counter() - window, 1e-9)
        r.last_loss = float(values.mean())
        r.log.write(
            {
                "step": done,
                "epoch": done / self.steps_per_epoch,
                "loss": r.last_loss,
                "lr": float(learning_rate(r.config, self.steps_per_epoch)(done - 1)),
                "tokens_per_s": len(values) * r.config.batch_size * T / seconds,
            }
        )
        r.pending = []

    def save(self, r: Replica, state, done: int) -> None:
        losses = [float(x) for x in jax.device_get(r.pending)]
        r.checkpoints.save(done, state, checkpoint_meta(losses, r.last_loss, r.checks, r.clock))
        r.saved = done
