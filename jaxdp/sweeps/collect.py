"""A sweep's results: `collect` gathers the finished cells *of the grid asked for* into rows
for ``results.csv`` (`write_csv`, `read_csv`), each with the protocol columns that tell runs apart
and without wall-clock columns, so the file does not depend on how the grid was split.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Sequence
from pathlib import Path

from jaxdp import tasks
from jaxdp.evaluation.evaluate import METRICS
from jaxdp.models import flops
from jaxdp.models.config import ModelConfig
from jaxdp.runtime import files
from jaxdp.runtime.errors import warn
from jaxdp.runtime.files import read_json
from jaxdp.sweeps.grids import Cell, validate
from jaxdp.training.protocol import LATER_FIELDS, LATER_MODEL_FIELDS, Protocol

PROTOCOL_COLUMNS = (
    "epochs",
    "batch_size",
    "lr",
    "warmup_epochs",
    "weight_decay",
    "train_examples",
    "dropout",
    "num_layers",
    "num_heads",
    "bucket_by_length",
)


#: mixer options that vary in practice, each a column (blank for a mixer without it), and all of
#: them as one "options" column
OPTION_COLUMNS = ("block_size", "local_blocks", "global_tokens", "window")


#: the validation scores (what every choice reads) and why a run stopped (`jaxdp.training.stopping`);
#: blank for runs scored before validation sets existed
VALID_COLUMNS = ("valid_accuracy", "valid_teacher_forced_exact", "valid_loss", "stop_reason")


CSV_FIELDS = (
    "task",
    "size",
    "L",
    "paper_L",
    "mixer",
    "variant",
    "dim",
    "seed",
    *METRICS,
    "examples",
    "final_loss",
    "steps",
    *VALID_COLUMNS,
    *PROTOCOL_COLUMNS,
    *OPTION_COLUMNS,
    "options",
    "state_size",
    "paper_gflops",
    "forward_gflops",
    "digest",
)


_INTS = {
    "size",
    "L",
    "paper_L",
    "dim",
    "seed",
    "steps",
    "examples",
    "epochs",
    "batch_size",
    "train_examples",
    "num_layers",
    "num_heads",
    "block_size",
    "local_blocks",
    "global_tokens",
    "window",
    "state_size",
}


_STRINGS = {"task", "mixer", "variant", "digest", "options", "stop_reason"}


_BOOLS = {"bucket_by_length"}


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
    settings = {
        **LATER_FIELDS,
        **train,
        **LATER_MODEL_FIELDS,
        **config["model"],
        "train_examples": config["data"]["train"]["count"],
    }
    options = dataclasses.asdict(model_config.options)
    return {
        "task": task["name"],
        "size": task["size"],
        "L": L,
        "paper_L": paper_L,
        "mixer": model_config.name,
        "variant": variant,
        "dim": model_config.dim,
        "seed": train["seed"],
        **{k: result.get(k) for k in (*METRICS, "examples", "final_loss", "steps", "stop_reason")},
        **{f"valid_{k}": (result.get("valid") or {}).get(k) for k in ("accuracy", "teacher_forced_exact", "loss")},
        **{k: settings[k] for k in PROTOCOL_COLUMNS},
        **{k: options.get(k) for k in OPTION_COLUMNS},
        "options": " ".join(f"{k}={v}" for k, v in options.items()),
        "state_size": model_config.state_numbers(L),
        "paper_gflops": flops.paper_flops(model_config, paper_L) / 1e9,
        "forward_gflops": flops.forward_flops(model_config, L) / 1e9,
        "digest": config["digest"],
    }


def collect(exp_dir: str | Path, cells: Sequence[Cell], protocol: Protocol) -> list[dict]:
    """One row per finished cell of `cells` (nothing else under `exp_dir`), sorted by (task,
    size, mixer, variant, dim, seed)."""
    rows = []
    for p in validate(cells, protocol):
        folder = Path(exp_dir) / p.path
        if (folder / "result.json").exists():
            config, result = read_json(folder / "config.json"), read_json(folder / "result.json")
            if config is None or result is None or "accuracy" not in result:
                warn(f"{folder}: result.json or config.json is unreadable; left out of the results")
                continue
            rows.append(result_row(config, result, p.cell.variant))
    return sorted(
        rows,
        key=lambda r: (
            r["task"],
            r["size"],
            r["mixer"],
            r["variant"],
            r["dim"],
            r["train_examples"],
            r["lr"],
            r["seed"],
        ),
    )


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
    """Rows of a results.csv (this version's columns or an older subset, whose mixer column was
    named ``model``), typed; blanks are None."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))

    def typed(k, v):
        if k in _STRINGS or k == "model":
            return v
        if v == "":
            return None
        if k in _BOOLS:
            return v == "True"
        return int(v) if k in _INTS else float(v)

    out = [{("mixer" if k == "model" else k): typed(k, v) for k, v in r.items()} for r in rows]
    for r in out:
        r.setdefault("variant", "")
        r.setdefault("stop_reason", "")
    return out
