"""``jaxdp train --config FILE.json``: a whole run read from one file.

The file has the shape of the ``config.json`` that every run folder holds, so a run is repeated
exactly by feeding its own config back (``jaxdp train --config runs/<run>/config.json --out
other``). Every section and key may be left out (a key left out takes the protocol's default, or
a command-line flag); flags given on the command line win over the file:

    {"task":  {"name": "lis", "size": 6, "options": {"value_range": 16}},
     "model": {"mixer": "standard", "dim": 64, "dropout": 0.0, "options": {}},
     "train": {"epochs": 20, "batch_size": 64, "lr": 0.001, "seed": 0},
     "data":  {"dir": "data/lis6"}}

A run's own config.json names the mixer ``attention`` (the key its digest was made with), which
is read as ``mixer``. Keys the run derives rather than chooses (``max_len``, ``vocab_size``, ``digest``, the training
set's record) are read and ignored; anything else unknown is refused in one line.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from jaxdp.models.config import SAVED_MIXER_KEY
from jaxdp.runtime.errors import ProtocolError
from jaxdp.training.protocol import MODEL_SETTABLE, TRAIN_SETTABLE

SECTIONS = {
    "task": ("name", "size", "options"),
    "model": ("mixer", "dim", "options", *MODEL_SETTABLE),
    "train": ("seed", *TRAIN_SETTABLE),
    "data": ("dir",),
}
DERIVED = {"model": (SAVED_MIXER_KEY, "max_len", "vocab_size"), "data": ("train", "test"), "": ("digest",)}


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """What a config file chooses; None where it leaves the choice to the flags."""

    task: str | None = None
    size: int | None = None
    task_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    mixer: str | None = None
    dim: int | None = None
    seed: int | None = None
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)  # TrainConfig and ModelConfig fields
    mixer_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    data: str | None = None


def load(path: str | Path) -> RunConfig:
    """Read and check a config file (module docstring); refusals name the file and the key."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ProtocolError(f"--config: no file {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ProtocolError(f"--config: {path} is not JSON ({e})") from None
    if not isinstance(raw, dict):
        raise ProtocolError(f"--config: {path} must hold a JSON object with sections {', '.join(SECTIONS)}")
    _check_keys(path, "", raw, tuple(SECTIONS))
    for section, allowed in SECTIONS.items():
        if not isinstance(raw.get(section, {}), dict):
            raise ProtocolError(f"--config: {path}: {section!r} must be an object")
        _check_keys(path, section, raw.get(section, {}), allowed)
    task, model, train = raw.get("task", {}), raw.get("model", {}), raw.get("train", {})
    settings = {k: v for k, v in model.items() if k in MODEL_SETTABLE}
    settings.update({k: v for k, v in train.items() if k in TRAIN_SETTABLE})
    return RunConfig(
        task=task.get("name"),
        size=task.get("size"),
        task_options=dict(task.get("options", {})),
        mixer=model.get("mixer", model.get(SAVED_MIXER_KEY)),
        dim=model.get("dim"),
        seed=train.get("seed"),
        settings=settings,
        mixer_options=dict(model.get("options", {})),
        data=raw.get("data", {}).get("dir"),
    )


def _check_keys(path: Path, section: str, values: dict, allowed: tuple[str, ...]) -> None:
    known = allowed + DERIVED.get(section, ())
    for key in values:
        if key not in known:
            where = f"{section}.{key}" if section else key
            raise ProtocolError(
                f"--config: {path}: unknown key {where!r}; {section or 'top level'} takes {', '.join(allowed)}"
            )
