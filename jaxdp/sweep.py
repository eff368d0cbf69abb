"""Grids of training runs that any scheduler can split and restart.

A sweep is a list of `Cell`s (task, size, model, D, seed) sharing one `Protocol` (data counts and
training settings). Each cell trains in its own folder

    <exp_dir>/<task>/<model>/size=<n>/d=<D>/seed=<s>/

and is skipped when that folder has a `result.json`, so an interrupted sweep restarted with the
same command finishes only the missing cells (a cell cut off mid-training resumes from its
checkpoint). `shard(cells, "i/n")` keeps every n-th cell from the i-th, so n processes, a SLURM
array or a shell loop cover the grid between them. `collect` gathers every finished cell into
`results.csv` (no wall-clock columns, so the file does not depend on how the grid was split).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import fcntl
import itertools
import json
from pathlib import Path
from typing import Iterable, Sequence

from jaxdp import flops, tasks
from jaxdp.models import ModelConfig
from jaxdp.models.config import ATTENTIONS
from jaxdp.tasks.dataset import build_to_dir
from jaxdp.train import TrainConfig, train

CSV_FIELDS = ("task", "size", "L", "model", "dim", "seed", "accuracy", "cot_exact_match", "token_accuracy",
              "final_loss", "steps", "examples", "paper_gflops", "forward_gflops")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Cell:
    task: str
    size: int
    model: str
    dim: int
    seed: int = 0

    @property
    def path(self) -> str:
        return f"{self.task}/{self.model}/size={self.size}/d={self.dim}/seed={self.seed}"


@dataclasses.dataclass(frozen=True)
class Protocol:
    """What every cell of a sweep shares."""

    train_examples: int
    test_examples: int
    train: TrainConfig
    data_seed: int = 0
    num_layers: int = 3
    num_heads: int = 4
    dropout: float = 0.1
    task_options: dict = dataclasses.field(default_factory=dict)  # per task name

    def task(self, cell: Cell) -> tasks.Task:
        return tasks.get(cell.task, cell.size, **self.task_options.get(cell.task, {}))

    def model_config(self, cell: Cell) -> ModelConfig:
        task = self.task(cell)
        return ModelConfig(attention=cell.model, dim=cell.dim, num_layers=self.num_layers, num_heads=self.num_heads,
                           dropout=self.dropout, max_len=task.max_len, vocab_size=len(task.vocab))  # fmt: skip


def grid(task_sizes: dict[str, Sequence[int]], models: Sequence[str], dims: dict[str, Sequence[int]],
         seeds: Sequence[int] = (0,)) -> list[Cell]:  # fmt: skip
    """Every (task, size, model, D, seed) combination; `dims` maps each task to its D grid."""
    bad = [m for m in models if m not in ATTENTIONS]
    if bad:
        raise ValueError(f"unknown model {bad[0]!r}; choose from {', '.join(ATTENTIONS)}")
    cells = []
    for name, sizes in task_sizes.items():
        if name not in tasks.TASKS:
            raise ValueError(f"unknown task {name!r}; choose one of: {', '.join(tasks.TASKS)}")
        for size, model, dim, seed in itertools.product(sizes, models, dims[name], seeds):
            cells.append(Cell(name, size, model, dim, seed))
    return cells


def shard(cells: Sequence[Cell], spec: str | None) -> list[Cell]:
    """Cells i, i+n, i+2n, … for spec "i/n" (all cells for None)."""
    if spec is None:
        return list(cells)
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise ValueError(f"--shard takes i/n with integers, got {spec!r}") from None
    if not 0 <= i < n:
        raise ValueError(f"--shard {spec}: need 0 <= i < n")
    return list(cells)[i::n]


def validate(cells: Iterable[Cell], protocol: Protocol) -> None:
    """Build every task and model config once, so a bad cell fails before any training."""
    for cell in cells:
        protocol.model_config(cell)
    if protocol.train.batch_size > protocol.train_examples:
        raise ValueError(f"batch_size {protocol.train.batch_size} > train_examples {protocol.train_examples}")


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def dataset_dir(data_root: Path, task: tasks.Task, protocol: Protocol) -> Path:
    options = "".join(f",{k}={v}" for k, v in sorted(task.options().items()))
    return (data_root / f"{task.name}-{task.size}{options}" /
            f"n={protocol.train_examples}+{protocol.test_examples}-seed={protocol.data_seed}")  # fmt: skip


def run(exp_dir: str | Path, cells: Sequence[Cell], protocol: Protocol, *, data_root: str | Path = "data",
        progress: bool = True, max_cells: int | None = None) -> dict[str, list[Cell]]:  # fmt: skip
    """Train every cell without a result; returns the cells that ran and those skipped.
    `max_cells` stops after that many trained cells (a time-boxed job; rerun to continue)."""
    exp_dir, data_root = Path(exp_dir), Path(data_root)
    validate(cells, protocol)
    ran, skipped = [], []
    loaded: dict[Path, tuple] = {}  # datasets already read by this process
    for cell in cells:
        out = exp_dir / cell.path
        if (out / "result.json").exists():
            skipped.append(cell)
            continue
        if max_cells is not None and len(ran) >= max_cells:
            break
        task = protocol.task(cell)
        data = dataset_dir(data_root, task, protocol)
        if data not in loaded:
            with _locked(data.with_name(data.name + ".lock")):  # one builder per dataset across processes
                loaded[data] = build_to_dir(task, data, protocol.train_examples, protocol.test_examples,
                                            protocol.data_seed, progress=progress)[:2]  # fmt: skip
        train_set, test_set = loaded[data]
        train_config = dataclasses.replace(protocol.train, seed=cell.seed)
        result = train(out, task, protocol.model_config(cell), train_config, train_set, test_set,
                       progress=progress, data_dir=str(data))  # fmt: skip
        if progress:
            print(f"{cell.path}: accuracy {result['accuracy']:.3f}", flush=True)
        ran.append(cell)
    return {"ran": ran, "skipped": skipped}


def collect(exp_dir: str | Path) -> list[dict]:
    """One row per finished cell under `exp_dir`, sorted by (task, size, model, dim, seed)."""
    rows = []
    for result_path in Path(exp_dir).glob("*/*/size=*/d=*/seed=*/result.json"):
        config = json.loads((result_path.parent / "config.json").read_text())
        result = json.loads(result_path.read_text())
        model_config = ModelConfig.from_dict(config["model"])
        L = model_config.max_len - 1  # the paper's L leaves out <eos>
        rows.append({
            "task": config["task"]["name"], "size": config["task"]["size"], "L": L,
            "model": model_config.attention, "dim": model_config.dim, "seed": config["train"]["seed"],
            **{k: result.get(k) for k in ("accuracy", "cot_exact_match", "token_accuracy", "final_loss", "steps",
                                          "examples")},
            "paper_gflops": flops.paper_flops(model_config, L) / 1e9,
            "forward_gflops": flops.forward_flops(model_config, L) / 1e9,
        })  # fmt: skip
    return sorted(rows, key=lambda r: (r["task"], r["size"], r["model"], r["dim"], r["seed"]))


def write_csv(rows: Sequence[dict], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{row[k]:.6g}" if isinstance(row[k], float) else row[k]) for k in CSV_FIELDS})
    tmp.replace(path)
    return path


def read_csv(path: str | Path) -> list[dict]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    ints = ("size", "L", "dim", "seed", "steps", "examples")
    return [{k: (int(v) if k in ints else v if k in ("task", "model") else float(v)) for k, v in r.items()} for r in rows]


def accuracy_table(rows: Sequence[dict]) -> str:
    """Markdown: one line per (task, size, model), accuracy per D (mean over seeds)."""
    dims = sorted({r["dim"] for r in rows})
    groups: dict[tuple, dict[int, list[float]]] = {}
    for r in rows:
        groups.setdefault((r["task"], r["size"], r["model"]), {}).setdefault(r["dim"], []).append(r["accuracy"])
    lines = ["| task | size | model | " + " | ".join(f"D={d}" for d in dims) + " |", "|---" * (3 + len(dims)) + "|"]
    for (task, size, model), by_dim in sorted(groups.items()):
        cells = [f"{sum(by_dim[d]) / len(by_dim[d]):.2f}" if d in by_dim else "" for d in dims]
        lines.append(f"| {task} | {size} | {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
