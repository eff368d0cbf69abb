"""Running a sweep: every cell of a grid without a result trains (or resumes) in its own
folder, one after the other (`run`). A finished cell whose scores were taken on another test set
or another `eval_examples` is scored again from its final checkpoint, without training. An
interrupted sweep restarted with the same command finishes only the missing cells (a cell cut off
mid-training resumes from its checkpoint); a cell another process holds is skipped. Cells that
differ only in seed or learning rate may train together as one pack (`jaxdp.training.pack`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import jax
from tqdm.auto import tqdm

from jaxdp.runtime.errors import JaxdpError, RunBusy
from jaxdp.runtime.files import read_json
from jaxdp.sweeps.grids import Cell, Plan, dataset_dir, validate
from jaxdp.tasks.builder import build_to_dir, validation_to_dir
from jaxdp.training import limits
from jaxdp.training.protocol import Protocol
from jaxdp.training.run import train

OUTCOMES = (
    "ran",
    "rescored",
    "skipped",
    "busy",
    "failed",
    "not_needed",
)  # not_needed: by a search (jaxdp.sweeps.search)


def run(
    exp_dir: str | Path,
    cells: Sequence[Cell],
    protocol: Protocol,
    *,
    data_root: str | Path = "data",
    progress: bool = True,
    max_cells: int | None = None,
    reporting: dict | None = None,
    compile_cache: str | Path | None = None,
    pack: int = 1,
    datasets: dict | None = None,
) -> dict[str, list[Cell]]:
    """Train every cell without a result (and rescore those scored otherwise). Returns the cells
    by outcome (`OUTCOMES`): "ran", "rescored", "skipped" (done already), "busy" (another process
    holds the cell: skipped) and "failed" (a one-line reason was printed; the sweep goes on).
    `max_cells` stops after that many trained cells (a time-boxed job; rerun to continue);
    `reporting` (``log_to``, ``eval_every``) is passed to every cell's `train`; `compile_cache`
    is a folder for `use_compile_cache`. With `pack` > 1, unfinished cells that differ only in
    seed or learning rate train `pack` at a time as one program (`jaxdp.training.pack`), unless
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
            room = pack if max_cells is None else min(pack, max_cells - len(outcome["ran"]))
            try:
                result = _cell_result(
                    plans[k - 1 :], room, exp_dir, protocol, data_root, loaded, packed, progress, reporting
                )
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
                    bar.write(f"{name}: {scores_text(result)} ({out})")
        bar.update(1)
    bar.close()
    return outcome


def _cell_result(plans, room, exp_dir, protocol, data_root, loaded, packed, progress, reporting) -> dict:
    """Train ``plans[0]`` (alone, or in a pack of at most `room` with the next plans it packs
    with, whose results wait in `packed`) and return its result."""
    p = plans[0]
    if p.path not in packed:
        group = _pack_group(plans, exp_dir, protocol, room)
        if len(group) > 1:
            packed.update(_run_pack(group, exp_dir, protocol, data_root, loaded, progress))
    if p.path not in packed:
        return _run_cell(p, exp_dir / p.path, protocol, data_root, loaded, progress, reporting or {})
    result = packed.pop(p.path)
    if isinstance(result, JaxdpError):
        raise result
    return result


def scores_text(result: dict) -> str:
    return f"accuracy {result['accuracy']:.3f}, teacher-forced exact {result['teacher_forced_exact']:.3f}"


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


def _scored_as_asked(result_path: Path, protocol: Protocol) -> bool:
    """A finished run scored on the test set, `eval_examples` and validation set this protocol
    asks for (a run finished before validation sets existed is scored again, not trained)."""
    evaluation = (read_json(result_path) or {}).get("evaluation") or {}
    test, valid = evaluation.get("test") or {}, evaluation.get("valid") or {}
    return (
        evaluation.get("eval_examples", "?") == protocol.train.eval_examples
        and (test.get("count"), test.get("seed")) == (protocol.test_examples, protocol.data_seed)
        and valid.get("count") == protocol.valid_examples
    )


def _run_cell(p: Plan, out: Path, protocol: Protocol, data_root, loaded: dict, progress: bool, reporting: dict) -> dict:
    train_set, test_set, valid_set = _load_data(p, protocol, data_root, loaded, progress)
    data = dataset_dir(data_root, p.task, protocol, p.train_examples)
    return train(
        out,
        p.task,
        p.model_config,
        p.train_config,
        train_set,
        test_set,
        progress=progress,
        data_dir=str(data),
        valid_set=valid_set,
        **reporting,
    )


def _pack_key(p: Plan) -> tuple:
    from jaxdp.training.pack import shared_settings

    return p.task, p.model_config, p.train_examples, tuple(sorted(shared_settings(p.train_config).items()))


def _pack_group(plans: Sequence[Plan], exp_dir: Path, protocol: Protocol, size: int) -> list[Plan]:
    """The first plan and the next unfinished ones that may train with it in one pack, `size` at most."""
    if size <= 1 or (exp_dir / plans[0].path / "result.json").exists():  # alone, or only to be rescored
        return list(plans[:1])
    key = _pack_key(plans[0])
    size = limits.replicas_that_fit(
        plans[0].model_config, plans[0].train_config.batch_size, plans[0].task.max_len, size
    )
    mates = [p for p in plans[1:] if _pack_key(p) == key and not (exp_dir / p.path / "result.json").exists()]
    return [plans[0], *mates[: size - 1]]


def _run_pack(
    group: Sequence[Plan], exp_dir: Path, protocol: Protocol, data_root, loaded: dict, progress: bool
) -> dict[str, dict | JaxdpError]:
    """Train `group` as one pack (`jaxdp.training.pack.train_packed`): each member's result, or the error
    that stopped the pack, by run path."""
    from jaxdp.training.pack import train_packed

    p = group[0]
    data = _load_data(p, protocol, data_root, loaded, progress)
    try:
        results = train_packed(
            [exp_dir / q.path for q in group],
            p.task,
            p.model_config,
            [q.train_config for q in group],
            *data[:2],
            valid_set=data[2],
            progress=progress,
            data_dir=str(dataset_dir(data_root, p.task, protocol, p.train_examples)),
        )
    except JaxdpError as e:
        return {q.path: e for q in group}
    return {q.path: result for q, result in zip(group, results)}


def _load_data(p: Plan, protocol: Protocol, data_root, loaded: dict, progress: bool) -> tuple:
    """The cell's (train, test, validation) sets, built the first time and kept in `loaded`."""
    data = dataset_dir(data_root, p.task, protocol, p.train_examples)
    if data not in loaded:
        train_set, test_set = build_to_dir(
            p.task, data, p.train_examples, protocol.test_examples, protocol.data_seed, progress=progress
        )[:2]
        loaded[data] = train_set, test_set, validation_to_dir(data, train_set, test_set, protocol.valid_examples)
    return loaded[data]


def summary(name: str, outcome: dict[str, list[Cell]], cells: int, results: Path | None) -> tuple[str, int]:
    """The sweep's last line, and its exit code: 1 if a cell failed, else 0. `results` is the
    results.csv written (None: no cell had a result)."""
    missing = cells - sum(len(v) for v in outcome.values())
    failed = [c.label for c in outcome["failed"]]
    named = ", ".join(failed[:10]) + (f" and {len(failed) - 10} more (each named above)" if len(failed) > 10 else "")
    text = (
        f"{name}: {len(outcome['ran'])} cells trained, {len(outcome['rescored'])} rescored, "
        f"{len(outcome['skipped'])} already done"
        + (f", {len(outcome['busy'])} in progress elsewhere" if outcome["busy"] else "")
        + (f", {len(failed)} failed ({named})" if failed else "")
        + (f", {len(outcome['not_needed'])} not needed by the search" if outcome.get("not_needed") else "")
        + (f", {missing} left (rerun to continue)" if missing else "")
        + (f"; results in {results}" if results else "; no results yet")
    )
    return text, 1 if outcome["failed"] else 0
