"""The protocol of a training run: everything that changes its result, held in one object.

`TrainConfig` holds the optimisation settings; its defaults are the paper's (§6.1: AdamW
0.9/0.999, lr 1e-4, weight decay 0.01, batch 512, 100 epochs; the benchmark's 5 warm-up epochs
then linear decay). `Protocol` is what a preset holds, what ``--set FIELD=VALUE``
changes and what the ``train`` command starts from: a `TrainConfig`, the model settings that a
grid cell leaves open (``model``: `ModelConfig` fields other than mixer, dim, max_len and
vocab_size, which the cell and its task fix), the mixer options it sets (``options``: by name for
every mixer that has the option, or as ``<mixer>.<option>``), the data request and per-task
options. No default is written twice: a field left out takes the default of the dataclass that
owns it.

A run's *identity* is what changes its trained parameters: the task and its options, the whole
`ModelConfig`, the `TrainConfig` without its mechanics (``log_every``, ``checkpoint_every``,
``keep_checkpoints``) and evaluation fields (``eval_examples``, ``eval_batch_size``), and the
training data's count and seed (its content digest is checked against the run's record when the
data is loaded). The identity names the mixer ``attention`` (`SAVED_MIXER_KEY`, the key of
the first saved runs, kept so that their digests stay). Its digest names the run folder (`run_path`):

    <task>/<mixer>/size=<n>/d=<D>/seed=<s>/<digest>/

so runs of different protocols sit side by side and never stand in for each other.

>>> p = Protocol().set(epochs=5, dropout=0.0, local_blocks=2)
>>> p.train.epochs, p.model["dropout"], p.options["local_blocks"]
(5, 0.0, 2)
>>> Protocol().set(colour="red")
Traceback (most recent call last):
...
jaxdp.runtime.errors.ProtocolError: unknown setting 'colour'; settable: ...
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from collections.abc import Mapping
from typing import Any

from jaxdp import tasks
from jaxdp.models import mixers
from jaxdp.models.config import SAVED_MIXER_KEY, ModelConfig, mixer_fields
from jaxdp.runtime.errors import ProtocolError, TrainingError
from jaxdp.runtime.validate import choice, integer, real

SCHEDULES = ("warmup_linear", "constant")
#: TrainConfig fields that do not change the trained parameters.
MECHANICS = ("log_every", "checkpoint_every", "keep_checkpoints")
EVALUATION = ("eval_examples", "eval_batch_size")
#: TrainConfig fields added after runs were first named, left out of a run's identity at their
#: default so that the runs trained before them keep their digests.
LATER_FIELDS = {
    "bucket_by_length": False,
    "check_every": None,
    "check_examples": 256,
    "solved_at": 0.95,
    "plateau_checks": 5,
    "plateau_delta": 0.01,
}
#: ModelConfig fields added after runs were first named, left out of the identity at their default.
LATER_MODEL_FIELDS = {"short_conv": 0, "layer_mixers": ()}
#: ModelConfig fields that a grid cell (mixer, dim) or its task (max_len, vocab_size) fixes.
CELL_FIELDS = ("mixer", "dim", "max_len", "vocab_size", "layer_mixers")  # a hybrid is a mixer name
DATA_FIELDS = ("train_examples", "test_examples", "valid_examples", "data_seed")


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Optimisation settings; the defaults are the paper's (§6.1)."""

    epochs: int = 100
    batch_size: int = 512
    lr: float = 1e-4
    b1: float = 0.9
    b2: float = 0.999
    weight_decay: float = 0.01
    warmup_epochs: float = 5.0
    schedule: str = "warmup_linear"
    seed: int = 0
    log_every: int = 50
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    eval_examples: int | None = None  # None: the whole test set
    eval_batch_size: int = 256
    # Batches of neighbouring lengths, each cut to its longest example (`jaxdp.training.batches.batch_indices`):
    # for mixed-length training sets (arithmetic's 1..n operators). Off: the paper's random batches.
    bucket_by_length: bool = False
    # The stopping rule (`jaxdp.training.stopping`), off when check_every is None (the paper: the whole
    # budget): every `check_every` steps the first `check_examples` validation examples are
    # decoded; the run stops once their accuracy >= `solved_at` ("solved"), or once the best of
    # the last `plateau_checks` checks is less than `plateau_delta` above the best before them
    # ("plateau"); else at the end of `epochs` ("budget"). solved_at sits above the 90% a min-D
    # asks for, so that a solved run's whole validation score clears it.
    check_every: int | None = None
    check_examples: int = 256
    solved_at: float = 0.95
    plateau_checks: int = 5
    plateau_delta: float = 0.01

    def __post_init__(self):
        where = lambda name: f"TrainConfig.{name}"  # noqa: E731
        choice(TrainingError, where("schedule"), self.schedule, SCHEDULES)
        for name in ("epochs", "batch_size", "log_every", "checkpoint_every", "keep_checkpoints", "eval_batch_size"):
            integer(TrainingError, where(name), getattr(self, name))
        integer(TrainingError, where("seed"), self.seed, low=0, high=2**32 - 1)  # what jax's PRNG key takes
        real(TrainingError, where("lr"), self.lr, 0.0, low_open=True)
        for name in ("b1", "b2"):
            real(TrainingError, where(name), getattr(self, name), 0.0, 1.0, high_open=True)
        real(TrainingError, where("weight_decay"), self.weight_decay, 0.0)
        real(TrainingError, where("warmup_epochs"), self.warmup_epochs, 0.0)
        if self.warmup_epochs > self.epochs:
            raise TrainingError(
                f"TrainConfig.warmup_epochs: {self.warmup_epochs:g} is longer than the run "
                f"(epochs={self.epochs}); set warmup_epochs <= epochs"
            )
        for name in ("eval_examples", "check_every"):
            if getattr(self, name) is not None:
                integer(TrainingError, where(name), getattr(self, name))
        for name in ("check_examples", "plateau_checks"):
            integer(TrainingError, where(name), getattr(self, name))
        real(TrainingError, where("solved_at"), self.solved_at, 0.0, 1.0, low_open=True)
        real(TrainingError, where("plateau_delta"), self.plateau_delta, 0.0)
        if not isinstance(self.bucket_by_length, bool):
            raise TrainingError(f"TrainConfig.bucket_by_length: must be true or false, got {self.bucket_by_length!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Protocol:
    """Everything a sweep's cells share; `set` changes any field by name (module docstring)."""

    train: TrainConfig = TrainConfig()
    model: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # mixer options: name or mixer.name
    train_examples: int = 1_000_000
    test_examples: int = 100_000
    valid_examples: int = 1_000  # the validation split every choice reads (`jaxdp.tasks.dataset`)
    data_seed: int = 0
    task_options: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        for name in DATA_FIELDS:
            integer(ProtocolError, f"Protocol.{name}", getattr(self, name), low=0 if name == "data_seed" else 1)
        for name in self.model:
            if name not in MODEL_SETTABLE:
                raise ProtocolError(
                    f"Protocol.model: {name!r} is not a settable ModelConfig field; "
                    f"choose from {', '.join(MODEL_SETTABLE)}"
                )
        for name in self.task_options:
            if name not in tasks.TASKS:
                raise ProtocolError(
                    f"Protocol.task_options: unknown task {name!r}; choose from {', '.join(tasks.TASKS)}"
                )
        for name in self.options:
            if setting_level(name) != "options":
                raise ProtocolError(f"Protocol.options: {name!r} is no mixer's option")

    def set(self, **changes: Any) -> Protocol:
        """A copy with fields changed by name: a TrainConfig or settable ModelConfig field, a mixer
        option (``block_size``: every mixer that has one; ``sparse.block_size``: that mixer's), a
        data field, or ``<task>.<option>`` for a task option. Checked as the owning dataclass
        checks it, when a cell's config is made."""
        train, model, mixer_options, top = {}, dict(self.model), dict(self.options), {}
        task_options = {name: dict(opts) for name, opts in self.task_options.items()}
        for name, value in changes.items():
            level = setting_level(name)
            if level == "task":
                task_name, option = name.split(".", 1)
                task_options.setdefault(task_name, {})[option] = value
            else:
                {"train": train, "model": model, "options": mixer_options, "data": top}[level][name] = value
        return dataclasses.replace(
            self,
            train=dataclasses.replace(self.train, **train),
            model=model,
            options=mixer_options,
            task_options=task_options,
            **top,
        )

    def mixer_options(self, mixer: str) -> dict[str, Any]:
        """The options this protocol sets for `mixer`: the unqualified ones it has, then its own."""
        own = {f.name for f in dataclasses.fields(mixers.get(mixer).options)}
        out = {k: v for k, v in self.options.items() if "." not in k and k in own}
        out.update({k.split(".", 1)[1]: v for k, v in self.options.items() if k.startswith(mixer + ".")})
        return out

    def task(self, name: str, size: int) -> tasks.Task:
        return tasks.get(name, size, **self.task_options.get(name, {}))

    def model_config(self, task: tasks.Task, mixer: str, dim: int, **options: Any) -> ModelConfig:
        """The cell's ModelConfig: the protocol's model settings and the mixer options it sets,
        then the cell's own mixer `options`."""
        named = mixer_fields(mixer, self.model.get("num_layers", MODEL_DEFAULTS["num_layers"]))  # a hybrid's plan
        mixer_options = {**self.mixer_options(named["mixer"]), **options}
        return ModelConfig(
            **named, dim=dim, max_len=task.max_len, vocab_size=len(task.vocab), **self.model, options=mixer_options
        )

    def settings(self) -> dict[str, Any]:
        """Every settable name with its current value (the defaults where nothing was set)."""
        out = {name: getattr(self.train, name) for name in TRAIN_SETTABLE}
        out.update({name: self.model.get(name, MODEL_DEFAULTS[name]) for name in MODEL_SETTABLE})
        out.update({name: getattr(self, name) for name in DATA_FIELDS})
        return {**out, **self.options}


TRAIN_SETTABLE = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name != "seed")  # seed: per cell
MODEL_SETTABLE = tuple(f.name for f in dataclasses.fields(ModelConfig) if f.name not in CELL_FIELDS + ("options",))
MODEL_DEFAULTS = {f.name: f.default for f in dataclasses.fields(ModelConfig) if f.name in MODEL_SETTABLE}


def option_names() -> tuple[str, ...]:
    """Every option of a registered mixer (the registry may grow: asked each time)."""
    names = []
    for mixer in mixers.available():
        names += [f.name for f in dataclasses.fields(mixers.get(mixer).options) if f.name not in names]
    return tuple(names)


def settable() -> tuple[str, ...]:
    return TRAIN_SETTABLE + MODEL_SETTABLE + option_names() + DATA_FIELDS


def _option_owner(name: str) -> type | None:
    """The options class of the registered mixer with the option `name` (``option`` or ``mixer.option``)."""
    mixer, dot, option = name.rpartition(".")
    candidates = [mixer] if dot else mixers.owners(option)
    for owner in candidates:
        if owner in mixers.available():
            options = mixers.get(owner).options
            if option in {f.name for f in dataclasses.fields(options)}:
                return options
    return None


def setting_level(name: str) -> str:
    """Which part of a Protocol `name` addresses: "train", "model", "options", "data" or "task"."""
    if name in TRAIN_SETTABLE:
        return "train"
    if name in MODEL_SETTABLE:
        return "model"
    if name in DATA_FIELDS:
        return "data"
    if _option_owner(name) is not None:
        return "options"
    task_name, dot, option = name.partition(".")
    if dot and task_name in tasks.TASKS and option:
        return "task"
    if dot and task_name in mixers.available():
        owners = mixers.owners(option)
        raise ProtocolError(
            f"{name}: {option} is "
            + (f"an option of {', '.join(owners)}, not of {task_name}" if owners else f"no option of {task_name}")
        )
    raise ProtocolError(
        f"unknown setting {name!r}; settable: {', '.join(settable())}, <mixer>.<option> "
        f"or <task>.<option> (e.g. sparse.block_size, lis.value_range)"
    )


def _field_type(name: str) -> Any:
    """The annotated type of the setting `name`, resolved (``int | None``, ``tuple[float, ...]``)."""
    level = setting_level(name)
    owner = (
        _option_owner(name)
        if level == "options"
        else {"train": TrainConfig, "model": ModelConfig, "data": Protocol}[level]
    )
    return typing.get_type_hints(owner)[name.rpartition(".")[2]]


def option_value(text: str) -> Any:
    """A task option's value: a bool (true/false), else an int, else the string."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return int(text)
    except ValueError:
        return text


def parse_value(name: str, text: str) -> Any:
    """`text` read as the type of the field `name` ("none" for an optional field's None), or as
    a task option (`option_value`) for ``<task>.<option>``."""
    if setting_level(name) == "task":
        return option_value(text)
    kind = _field_type(name)
    members = typing.get_args(kind) if typing.get_origin(kind) in (typing.Union, types.UnionType) else (kind,)
    if type(None) in members and text.lower() == "none":
        return None
    base = next(m for m in members if m is not type(None))
    if typing.get_origin(base) is tuple:  # e.g. retention's gammas: 0.9,0.95,0.99,0.999
        try:
            return tuple(float(x) for x in text.split(","))
        except ValueError:
            raise ProtocolError(f"{name}: {text!r} is not a comma-separated list of numbers") from None
    if base is bool:
        if text.lower() not in ("true", "false"):
            raise ProtocolError(f"{name}: {text!r} is not a bool; allowed: true, false")
        return text.lower() == "true"
    try:
        value = base(text)
    except ValueError:
        raise ProtocolError(f"{name}: {text!r} is not {'an' if base is int else 'a'} {base.__name__}") from None
    if base is float and not math.isfinite(value):
        raise ProtocolError(f"{name}: must be a finite number, got {text!r}")
    return value


def parse_settings(items: typing.Iterable[str]) -> dict[str, Any]:
    """``["epochs=4", "lr=3e-4"]`` -> {"epochs": 4, "lr": 0.0003}, each checked by name and type."""
    out = {}
    for item in items:
        name, eq, text = item.partition("=")
        if not eq or not name or not text:
            raise ProtocolError(f"--set {item!r}: use FIELD=VALUE, e.g. epochs=5")
        out[name] = parse_value(name, text)
    return out


# ------------------------------------------------------------------------------ run identity


def run_identity(
    task: tasks.Task,
    model_config: ModelConfig,
    train_config: TrainConfig,
    train_examples: int,
    data_seed: int,
    test_examples: int | None = None,
) -> dict[str, Any]:
    """What changes a run's trained parameters (module docstring), as plain JSON data. With the
    stopping rule on, where a run stops depends on its validation examples, which are drawn apart
    from the test set too: the test set's count joins the identity."""
    train = {
        k: v
        for k, v in train_config.to_dict().items()
        if k not in MECHANICS + EVALUATION and not (k in LATER_FIELDS and v == LATER_FIELDS[k])
    }
    model = {
        (SAVED_MIXER_KEY if k == "mixer" else k): v
        for k, v in model_config.to_dict().items()
        if not (k in LATER_MODEL_FIELDS and v == LATER_MODEL_FIELDS[k])
    }
    identity = {
        "task": {"name": task.name, "size": task.size, "options": task.options()},
        "model": model,
        "train": train,
        "data": {"train_examples": int(train_examples), "seed": int(data_seed)},
    }
    if train_config.check_every is not None:
        if test_examples is None:
            raise ProtocolError("the stopping rule (check_every) needs the test set's count for the run's identity")
        identity["data"]["test_examples"] = int(test_examples)
    return json.loads(json.dumps(identity))  # tuples -> lists, as config.json will hold them


def digest(identity: Mapping[str, Any]) -> str:
    """A short content hash of an identity (10 hex digits)."""
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=5).hexdigest()


def run_path(identity: Mapping[str, Any]) -> str:
    """``<task>/<model>/size=<n>/d=<D>/seed=<s>/<digest>``: the one run-folder scheme."""
    task, model = identity["task"], identity["model"]
    return (
        f"{task['name']}/{model[SAVED_MIXER_KEY]}/size={task['size']}/d={model['dim']}/"
        f"seed={identity['train']['seed']}/{digest(identity)}"
    )
