"""Grids of training runs that any scheduler can split and restart.

A sweep is a list of `Cell`s (task, size, model, D, seed, and optionally a named variant with its
own model settings) sharing one `jaxdp.protocol.Protocol`. Each cell trains in the folder its
whole identity names (`jaxdp.protocol.run_path`):

    <exp_dir>/<task>/<model>/size=<n>/d=<D>/seed=<s>/<digest>/

so a cell is found by what it was trained with, never by its coordinates alone: rerunning a sweep
with any protocol field changed trains new cells beside the old ones, and rerunning it unchanged
trains nothing. A finished cell whose scores were taken on another test set or another
`eval_examples` is scored again from its final checkpoint, without training. An interrupted
sweep restarted with the same command finishes only the missing cells (a cell cut off
mid-training resumes from its checkpoint). `shard(cells, "i/n")` keeps every n-th cell from the
i-th, so n processes, a SLURM array or a shell loop cover the grid between them. `collect`
gathers the finished cells *of the grid asked for* into rows for `results.csv`, each with the
protocol columns that tell runs apart and without wall-clock columns (so the file does not depend
on how the grid was split).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import jax
import numpy as np
from tqdm.auto import tqdm

from jaxdp import files, flops, limits, tasks
from jaxdp.errors import JaxdpError, ProtocolError, RunBusy, warn
from jaxdp.evaluate import METRICS
from jaxdp.models import mixers
from jaxdp.models.config import ConfigError, ModelConfig, check_model_name
from jaxdp.plots import series
from jaxdp.study import select
from jaxdp.protocol import LATER_FIELDS, LATER_MODEL_FIELDS, Protocol, TrainConfig, run_identity, run_path
from jaxdp.tasks.dataset import build_to_dir, validation_to_dir
from jaxdp.train import init_state, make_train_step, train

PROTOCOL_COLUMNS = ("epochs", "batch_size", "lr", "warmup_epochs", "weight_decay", "train_examples", "dropout",
                    "num_layers", "num_heads", "bucket_by_length")  # fmt: skip
#: mixer options that vary in practice, each a column (blank for a mixer without it), and all of
#: them as one "options" column
OPTION_COLUMNS = ("block_size", "local_blocks", "global_tokens", "window")
#: the validation scores (what every choice reads) and why a run stopped (`jaxdp.stopping`);
#: blank for runs scored before validation sets existed
VALID_COLUMNS = ("valid_accuracy", "valid_teacher_forced_exact", "valid_loss", "stop_reason")
CSV_FIELDS = ("task", "size", "L", "paper_L", "model", "variant", "dim", "seed", *METRICS, "examples",
              "final_loss", "steps", *VALID_COLUMNS, *PROTOCOL_COLUMNS, *OPTION_COLUMNS, "options", "state_size", "paper_gflops",
              "forward_gflops", "digest")  # fmt: skip
_INTS = {"size", "L", "paper_L", "dim", "seed", "steps", "examples", "epochs", "batch_size", "train_examples",
         "num_layers", "num_heads", "block_size", "local_blocks", "global_tokens", "window", "state_size"}  # fmt: skip
_STRINGS = {"task", "model", "variant", "digest", "options", "stop_reason"}
_BOOLS = {"bucket_by_length"}


@dataclasses.dataclass(frozen=True)
class Cell:
    """One grid point. `variant` names a setting of the model beyond the protocol's (for
    instance Figure 2's window "kB>=m"), and `options` holds it as ModelConfig fields."""

    task: str
    size: int
    model: str
    dim: int
    seed: int = 0
    variant: str = ""
    options: tuple[tuple[str, Any], ...] = ()
    lr: float | None = None  # None: the protocol's (``--lrs`` makes each value its own cell)
    train_examples: int | None = None  # None: the protocol's (``--train-examples``)

    @property
    def label(self) -> str:
        name = f"{self.task}/{self.model}/size={self.size}/d={self.dim}/seed={self.seed}"
        name += (f"/lr={self.lr:g}" if self.lr is not None else "") + (
            f"/n={self.train_examples}" if self.train_examples is not None else "")  # fmt: skip
        return name + (f" [{self.variant}]" if self.variant else "")


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a cell trains: its task, configs and the run folder its identity names."""

    cell: Cell
    task: tasks.Task
    model_config: ModelConfig
    train_config: TrainConfig
    path: str
    train_examples: int


def plan(cell: Cell, protocol: Protocol) -> Plan:
    task = protocol.task(cell.task, cell.size)
    model_config = protocol.model_config(task, cell.model, cell.dim, **dict(cell.options))
    train_config = dataclasses.replace(protocol.train, seed=cell.seed,
                                       **({"lr": cell.lr} if cell.lr is not None else {}))  # fmt: skip
    examples = cell.train_examples or protocol.train_examples
    identity = run_identity(task, model_config, train_config, examples, protocol.data_seed, protocol.test_examples)
    return Plan(cell, task, model_config, train_config, run_path(identity), examples)


def grid(task_sizes: dict[str, Sequence[int]], models: Sequence[str], dims: dict[str, Sequence[int]],
         seeds: Sequence[int] = (0,), lrs: Sequence[float | None] = (None,),
         train_examples: Sequence[int | None] = (None,)) -> list[Cell]:  # fmt: skip
    """Every (task, size, model, D, seed, lr, training examples) combination; `dims` maps each
    task to its D grid; None in `lrs` or `train_examples` takes the protocol's."""
    for model in models:
        try:
            check_model_name(model)
        except ConfigError as error:
            raise ProtocolError(f"unknown model {model!r}; choose from {', '.join(mixers.available())}, "
                                "or a hybrid such as linear+standard") from error  # fmt: skip
    cells = []
    for name, sizes in task_sizes.items():
        if name not in tasks.TASKS:
            raise ProtocolError(f"unknown task {name!r}; choose one of: {', '.join(tasks.TASKS)}")
        for size, model, dim, seed, lr, n in itertools.product(sizes, models, dims[name], seeds, lrs, train_examples):
            cells.append(Cell(name, size, model, dim, seed, lr=lr, train_examples=n))
    return cells


def shard(cells: Sequence[Cell], spec: str | None) -> list[Cell]:
    """Cells i, i+n, i+2n, … for spec "i/n" (all cells for None)."""
    if spec is None:
        return list(cells)
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise ProtocolError(f"--shard takes i/n with integers, got {spec!r}") from None
    if not 0 <= i < n:
        raise ProtocolError(f"--shard {spec}: need 0 <= i < n")
    return list(cells)[i::n]


def validate(cells: Iterable[Cell], protocol: Protocol) -> list[Plan]:
    """Plan every cell, so that a bad cell fails before any data is built or anything compiles:
    settings that cannot work, and cells or datasets this machine cannot hold (`jaxdp.limits`)."""
    plans = [plan(cell, protocol) for cell in cells]
    train = protocol.train
    if train.check_every is not None and train.check_examples > protocol.valid_examples:
        raise ProtocolError(f"check_examples {train.check_examples} > valid_examples {protocol.valid_examples}")
    for examples in {p.train_examples for p in plans}:
        if train.batch_size > examples:
            raise ProtocolError(f"batch_size {train.batch_size} > train_examples {examples}")
    for task, examples in {(p.task, p.train_examples) for p in plans}:
        limits.check_dataset_memory(task, examples + protocol.test_examples + protocol.valid_examples)
    for examples in {p.train_examples for p in plans}:
        limits.check_steps(train, examples)
    for config in {p.model_config for p in plans}:
        limits.check_training_memory(config, protocol.train.batch_size, config.max_len)  # the task's max_len
    return plans


def dataset_dir(data_root: Path, task: tasks.Task, protocol: Protocol, train_examples: int | None = None) -> Path:
    """The folder of a task's datasets: `train_examples` (default: the protocol's) + test."""
    options = "".join(f",{k}={v}" for k, v in sorted(task.options().items()))
    return (Path(data_root) / f"{task.name}-{task.size}{options}" /
            f"n={train_examples or protocol.train_examples}+{protocol.test_examples}-seed={protocol.data_seed}")  # fmt: skip


def _read_json(path: Path) -> dict | None:
    """A JSON object from `path`, or None if it is missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _scored_as_asked(result_path: Path, protocol: Protocol) -> bool:
    """A finished run scored on the test set, `eval_examples` and validation set this protocol
    asks for (a run finished before validation sets existed is scored again, not trained)."""
    evaluation = (_read_json(result_path) or {}).get("evaluation") or {}
    test, valid = evaluation.get("test") or {}, evaluation.get("valid") or {}
    return (evaluation.get("eval_examples", "?") == protocol.train.eval_examples
            and (test.get("count"), test.get("seed")) == (protocol.test_examples, protocol.data_seed)
            and valid.get("count") == protocol.valid_examples)  # fmt: skip


OUTCOMES = ("ran", "rescored", "skipped", "busy", "failed", "not_needed")  # not_needed: by a search (jaxdp.search)


def run(exp_dir: str | Path, cells: Sequence[Cell], protocol: Protocol, *, data_root: str | Path = "data",
        progress: bool = True, max_cells: int | None = None, reporting: dict | None = None,
        compile_cache: str | Path | None = None, pack: int = 1,
        datasets: dict | None = None) -> dict[str, list[Cell]]:  # fmt: skip
    """Train every cell without a result (and rescore those scored otherwise). Returns the cells
    by outcome (`OUTCOMES`): "ran", "rescored", "skipped" (done already), "busy" (another process
    holds the cell: skipped) and "failed" (a one-line reason was printed; the sweep goes on).
    `max_cells` stops after that many trained cells (a time-boxed job; rerun to continue);
    `reporting` (``log_to``, ``eval_every``) is passed to every cell's `train`; `compile_cache`
    is a folder for `use_compile_cache`. With `pack` > 1, unfinished cells that differ only in
    seed or learning rate train `pack` at a time as one program (`jaxdp.pack`), unless
    `reporting` asks for loggers or periodic evaluation, which follow runs trained alone.
    `datasets` keeps the datasets read, by folder, for the next call (a search's probes)."""
    exp_dir = Path(exp_dir)
    use_compile_cache(compile_cache)
    plans = validate(cells, protocol)
    outcome: dict[str, list[Cell]] = {name: [] for name in OUTCOMES}
    loaded: dict[Path, tuple] = {} if datasets is None else datasets  # datasets already read by this process
    packed: dict[str, dict | JaxdpError] = {}  # results of the cells a pack trained, by run path
    if reporting and (reporting.get("log_to") or reporting.get("eval_every")):
        pack = 1  # loggers and periodic evaluation follow runs trained alone
    bar = tqdm(total=len(plans), unit="cell", disable=not progress, dynamic_ncols=True)
    for k, p in enumerate(plans, 1):
        name = f"cell {k}/{len(plans)} {p.cell.label}"
        bar.set_description(name)
        out = exp_dir / p.path
        finished = (out / "result.json").exists()
        if finished and _scored_as_asked(out / "result.json", protocol):
            outcome["skipped"].append(p.cell)
        elif not finished and max_cells is not None and len(outcome["ran"]) >= max_cells:
            break
        else:
            try:
                if p.path not in packed:
                    room = pack if max_cells is None else min(pack, max_cells - len(outcome["ran"]))
                    group = _pack_group(plans[k - 1:], exp_dir, protocol, room)
                    if len(group) > 1:
                        packed.update(_run_pack(group, exp_dir, protocol, data_root, loaded, progress))
                result = packed.pop(p.path) if p.path in packed else _run_cell(
                    p, out, protocol, data_root, loaded, progress, reporting or {})  # fmt: skip
                if isinstance(result, JaxdpError):
                    raise result
            except RunBusy as e:
                outcome["busy"].append(p.cell)
                bar.write(f"{name}: skipped, {e}")
            except JaxdpError as e:
                outcome["failed"].append(p.cell)
                bar.write(f"{name}: failed: {e}", file=sys.stderr)
            else:
                outcome["rescored" if finished else "ran"].append(p.cell)
                jax.clear_caches()  # each cell's compiled programs; kept, they exhaust the memory mappings
                if progress:
                    bar.write(f"{name}: accuracy {result['accuracy']:.3f}, teacher-forced exact "
                              f"{result['teacher_forced_exact']:.3f} ({out})")  # fmt: skip
        bar.update(1)
    bar.close()
    return outcome


def use_compile_cache(folder: str | Path | None) -> Path | None:
    """Keep XLA's compiled programs in `folder`, jax's persistent compilation cache: a rerun, a
    requeued array task or a sibling shard on the same file system then loads a cell's training
    and decoding steps instead of compiling them again (the key is the program, jax's version
    and its flags, so a stale entry is never used). Only compilations longer than a second are
    kept (jax's default). ``JAX_COMPILATION_CACHE_DIR``, when set, wins; None changes nothing.
    Like jax's own cache, the folder is trusted code: do not share it with users you do not
    trust. Returns the folder in use, or None."""
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return Path(os.environ["JAX_COMPILATION_CACHE_DIR"])
    if folder is None:
        return None
    from jax.experimental.compilation_cache import compilation_cache

    Path(folder).mkdir(parents=True, exist_ok=True)
    compilation_cache.set_cache_dir(str(folder))
    compilation_cache.reset_cache()  # takes effect even after this process's first compile
    return Path(folder)


def _run_cell(p: Plan, out: Path, protocol: Protocol, data_root, loaded: dict, progress: bool, reporting: dict) -> dict:
    train_set, test_set, valid_set = _load_data(p, protocol, data_root, loaded, progress)
    data = dataset_dir(data_root, p.task, protocol, p.train_examples)
    return train(out, p.task, p.model_config, p.train_config, train_set, test_set, progress=progress,
                 data_dir=str(data), valid_set=valid_set, **reporting)  # fmt: skip


def _pack_key(p: Plan) -> tuple:
    from jaxdp.pack import shared_settings

    return p.task, p.model_config, p.train_examples, tuple(sorted(shared_settings(p.train_config).items()))


def _pack_group(plans: Sequence[Plan], exp_dir: Path, protocol: Protocol, size: int) -> list[Plan]:
    """The first plan and the next unfinished ones that may train with it in one pack, `size` at most."""
    if size <= 1 or (exp_dir / plans[0].path / "result.json").exists():  # alone, or only to be rescored
        return list(plans[:1])
    key = _pack_key(plans[0])
    size = limits.replicas_that_fit(plans[0].model_config, plans[0].train_config.batch_size, plans[0].task.max_len, size)
    mates = [p for p in plans[1:] if _pack_key(p) == key and not (exp_dir / p.path / "result.json").exists()]
    return [plans[0], *mates[: size - 1]]


def _run_pack(group: Sequence[Plan], exp_dir: Path, protocol: Protocol, data_root, loaded: dict,
              progress: bool) -> dict[str, dict | JaxdpError]:  # fmt: skip
    """Train `group` as one pack (`jaxdp.pack.train_packed`): each member's result, or the error
    that stopped the pack, by run path."""
    from jaxdp.pack import train_packed

    p = group[0]
    data = _load_data(p, protocol, data_root, loaded, progress)
    try:
        results = train_packed([exp_dir / q.path for q in group], p.task, p.model_config,
                               [q.train_config for q in group], *data[:2], valid_set=data[2], progress=progress,
                               data_dir=str(dataset_dir(data_root, p.task, protocol, p.train_examples)))  # fmt: skip
    except JaxdpError as e:
        return {q.path: e for q in group}
    return {q.path: result for q, result in zip(group, results)}


def _load_data(p: Plan, protocol: Protocol, data_root, loaded: dict, progress: bool) -> tuple:
    """The cell's (train, test, validation) sets, built the first time and kept in `loaded`."""
    data = dataset_dir(data_root, p.task, protocol, p.train_examples)
    if data not in loaded:
        train_set, test_set = build_to_dir(p.task, data, p.train_examples, protocol.test_examples, protocol.data_seed,
                                           progress=progress)[:2]  # fmt: skip
        loaded[data] = train_set, test_set, validation_to_dir(data, train_set, test_set, protocol.valid_examples)
    return loaded[data]


def summary(name: str, outcome: dict[str, list[Cell]], cells: int, results: Path | None) -> tuple[str, int]:
    """The sweep's last line, and its exit code: 1 if a cell failed, else 0. `results` is the
    results.csv written (None: no cell had a result)."""
    missing = cells - sum(len(v) for v in outcome.values())
    failed = [c.label for c in outcome["failed"]]
    named = ", ".join(failed[:10]) + (f" and {len(failed) - 10} more (each named above)" if len(failed) > 10 else "")
    text = (f"{name}: {len(outcome['ran'])} cells trained, {len(outcome['rescored'])} rescored, "
            f"{len(outcome['skipped'])} already done"
            + (f", {len(outcome['busy'])} in progress elsewhere" if outcome["busy"] else "")
            + (f", {len(failed)} failed ({named})" if failed else "")
            + (f", {len(outcome['not_needed'])} not needed by the search" if outcome.get("not_needed") else "")
            + (f", {missing} left (rerun to continue)" if missing else "")
            + (f"; results in {results}" if results else "; no results yet"))  # fmt: skip
    return text, 1 if outcome["failed"] else 0


# --------------------------------------------------------------------------------- results


def paper_length(task: str, size: int) -> int | None:
    """The paper's L for a task at one of its sizes (§6.1; `tasks.PAPER_MAX_LENGTHS`)."""
    sizes = tasks.PAPER_SIZES.get(task, ())
    return tasks.PAPER_MAX_LENGTHS[task][sizes.index(size)] if size in sizes else None


def result_row(config: dict, result: dict, variant: str = "") -> dict:
    """One results.csv row from a run's config.json and result.json. ``L`` is our longest
    sequence without <eos> (max_len − 1); ``paper_L`` the paper's length at that size, where the
    paper has one (else ours). ``paper_gflops`` is the paper's 2·N·L at ``paper_L``,
    ``forward_gflops`` our full count at ``L``."""
    model_config = ModelConfig.from_dict(config["model"])
    task = config["task"]
    L = model_config.max_len - 1
    paper_L = paper_length(task["name"], task["size"]) or L
    train = config["train"]
    # a run trained before a later TrainConfig field was added ran at its default
    settings = {**LATER_FIELDS, **train, **LATER_MODEL_FIELDS, **config["model"], "train_examples": config["data"]["train"]["count"]}
    options = dataclasses.asdict(model_config.options)
    return {
        "task": task["name"], "size": task["size"], "L": L, "paper_L": paper_L, "model": model_config.name,
        "variant": variant, "dim": model_config.dim, "seed": train["seed"],
        **{k: result.get(k) for k in (*METRICS, "examples", "final_loss", "steps", "stop_reason")},
        **{f"valid_{k}": (result.get("valid") or {}).get(k) for k in ("accuracy", "teacher_forced_exact", "loss")},
        **{k: settings[k] for k in PROTOCOL_COLUMNS}, **{k: options.get(k) for k in OPTION_COLUMNS},
        "options": " ".join(f"{k}={v}" for k, v in options.items()),
        "state_size": model_config.state_numbers(L),
        "paper_gflops": flops.paper_flops(model_config, paper_L) / 1e9,
        "forward_gflops": flops.forward_flops(model_config, L) / 1e9,
        "digest": config["digest"],
    }  # fmt: skip


def collect(exp_dir: str | Path, cells: Sequence[Cell], protocol: Protocol) -> list[dict]:
    """One row per finished cell of `cells` (nothing else under `exp_dir`), sorted by (task,
    size, model, variant, dim, seed)."""
    rows = []
    for p in validate(cells, protocol):
        folder = Path(exp_dir) / p.path
        if (folder / "result.json").exists():
            config, result = _read_json(folder / "config.json"), _read_json(folder / "result.json")
            if config is None or result is None or "accuracy" not in result:
                warn(f"{folder}: result.json or config.json is unreadable; left out of the results")
                continue
            rows.append(result_row(config, result, p.cell.variant))
    return sorted(rows, key=lambda r: (r["task"], r["size"], r["model"], r["variant"], r["dim"], r["train_examples"],
                                       r["lr"], r["seed"]))  # fmt: skip


def write_csv(rows: Sequence[dict], path: str | Path) -> Path:
    with files.replacing(path, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell_text(row.get(k)) for k in CSV_FIELDS})
    return Path(path)


def _cell_text(value) -> str:
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def read_csv(path: str | Path) -> list[dict]:
    """Rows of a results.csv (this version's columns or an older subset), typed; blanks are None."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))

    def typed(k, v):
        if k in _STRINGS:
            return v
        if v == "":
            return None
        if k in _BOOLS:
            return v == "True"
        return int(v) if k in _INTS else float(v)

    out = [{k: typed(k, v) for k, v in r.items()} for r in rows]
    for r in out:
        r.setdefault("variant", "")
        r.setdefault("stop_reason", "")
    return out


def accuracy_table(rows: Sequence[dict], metric: str = "accuracy") -> str:
    """Markdown: one line per (task, size, model and variant), `metric` per D of each seed's best
    learning rate (`jaxdp.study.select`): the mean, and [lowest–highest] over several seeds."""
    rows = select(rows)
    dims = sorted({r["dim"] for r in rows})
    groups: dict[tuple, dict[int, list[float]]] = {}
    for r in rows:
        groups.setdefault((r["task"], r["size"], series(r)), {}).setdefault(r["dim"], []).append(r[metric])
    seeds = len({r.get("seed") for r in rows})
    lines = [f"{metric} (test set" + (f"; mean [lowest–highest] over {seeds} seeds" if seeds > 1 else "") + "):", "",
             "| task | size | model | " + " | ".join(f"D={d}" for d in dims) + " |",
             "|---" * (3 + len(dims)) + "|"]  # fmt: skip
    for (task, size, model), by_dim in sorted(groups.items()):
        cells = [_spread(by_dim[d]) if d in by_dim else "" for d in dims]
        lines.append(f"| {task} | {size} | {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _spread(values: Sequence[float]) -> str:
    text = f"{np.mean(values):.2f}"
    return text if len(values) == 1 else f"{text} [{min(values):.2f}–{max(values):.2f}]"


# -------------------------------------------------------------------------------- estimates


def measure_rate(folder: str | Path | None = None, keep: bool = True) -> dict[str, float]:
    """`probe_rate`, kept (`keep`) in ``folder/rate.json`` (a sweep's compile cache) for this
    machine's backend, devices, cores and jax version: a rerun, a shard or a sibling sweep reads
    it instead of probing again (a few seconds on a CPU)."""
    key = {"backend": jax.default_backend(), "devices": [d.device_kind for d in jax.devices()],
           "cores": os.cpu_count(), "jax": jax.__version__}  # fmt: skip
    path = Path(folder) / "rate.json" if folder is not None else None
    kept = _read_json(path) if path is not None else None
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
    config = ModelConfig(attention="standard", dim=128, max_len=64, vocab_size=20)
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
    return {"flops_per_s": flops.train_flops(config, 64) * 32 / per_step, "compile_seconds": compile_seconds,
            "backend": jax.default_backend()}  # fmt: skip


def estimate(plans: Sequence[Plan], protocol: Protocol, rate: dict[str, float]) -> dict[str, float]:
    """The sweep's FLOPs (training: 3 × forward per example and epoch, the whole budget even where
    the stopping rule may end a run sooner; evaluation: greedy decoding of the examples scored) and the time they take at the measured `rate`, plus a compile per
    cell. An order of magnitude: small models run below the probe's rate, large ones above."""
    train = evaluation = 0.0
    for p in plans:
        L = p.task.max_len
        train += flops.train_flops(p.model_config, L) * p.train_examples * protocol.train.epochs
        scored = min(protocol.train.eval_examples or protocol.test_examples, protocol.test_examples) + protocol.valid_examples
        evaluation += flops.decode_flops(p.model_config, L // 2, L) * scored
    seconds = (train + evaluation) / rate["flops_per_s"] + 3 * rate["compile_seconds"] * len(plans)
    return {"train_flops": train, "eval_flops": evaluation, "seconds": seconds}


def describe_estimate(numbers: dict[str, float], rate: dict[str, float], cells: int) -> str:
    hours = numbers["seconds"] / 3600
    when = (f"{hours / 24:.0f} days" if hours >= 48 else f"{hours:.1f} h" if hours >= 1
            else f"{max(numbers['seconds'] / 60, 1):.0f} min")  # fmt: skip
    return (f"estimated cost: {cells} cells, {numbers['train_flops'] / 1e15:.3g} PFLOP training + "
            f"{numbers['eval_flops'] / 1e15:.3g} PFLOP decoding, about {when} on this {rate['backend']} "
            f"(measured {rate['flops_per_s'] / 1e9:.0f} GFLOP/s on a probe training step; an order of magnitude)")  # fmt: skip

