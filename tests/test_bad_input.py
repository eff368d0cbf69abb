"""Every bad input is refused in one line that names it: exit 2, nothing written, no traceback;
the Python API raises an error naming the argument."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from experiments import fig1
from jaxdp import cli, tasks
from jaxdp.models import ModelConfig, Transformer
from jaxdp.runtime.errors import JaxdpError
from jaxdp.tasks.builder import build
from jaxdp.tasks.dataset import save
from jaxdp.training.protocol import TrainConfig

LIS = ["--task", "lis", "--size", "4", "--option", "value_range=8"]
SWEEP = ["--preset", "tiny", "--tasks", "lis", "--sizes", "4", "--dims", "8", "--dry-run"]
SMALL = ["--batch-size", "32", "--warmup-epochs", "0"]


@pytest.fixture
def folder(tmp_path) -> Path:
    """A dataset, a finished-looking run folder and a plain file, to check nothing changes."""
    data = tmp_path / "data"
    data.mkdir()
    train_set, test_set = build(tasks.get("lis", 4, value_range=8), 256, 16, seed=0, progress=False)
    save(train_set, data / "train.npz")
    save(test_set, data / "test.npz")
    (tmp_path / "notes.txt").write_text("a file, not a folder\n")
    (tmp_path / "text" / "train.npz").parent.mkdir()
    (tmp_path / "text" / "train.npz").write_text("tokens,prompt_len\n1,2\n")
    (tmp_path / "text" / "test.npz").write_text("tokens,prompt_len\n1,2\n")
    for name, train in (("huge-dim", {"epochs": 1}), ("huge-epochs", {"epochs": 10**9})):
        dim = 4 * 10**6 if name == "huge-dim" else 8
        (tmp_path / f"{name}.json").write_text(
            json.dumps(
                {
                    "task": {"name": "lis", "size": 4, "options": {"value_range": 8}},
                    "model": {"attention": "standard", "dim": dim},
                    "train": {**train, "batch_size": 32, "warmup_epochs": 0},
                    "data": {"dir": str(data)},
                }
            )
        )
    return tmp_path


def snapshot(root: Path) -> dict:
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


CLI_CASES = [
    (["eval", "--run", "{d}/run", "--examples", "-5"], "--examples"),
    (["eval", "--run", "{d}/run", "--examples", "0"], "--examples"),
    (["locality", "--samples", "0"], "--samples"),
    (["data", *LIS, "--train", "0", "--test", "5", "--out", "{d}/new"], "--train"),
    (["data", *LIS, "--train", "5", "--test", "5", "--workers", "0", "--out", "{d}/new"], "--workers"),
    (["data", *LIS, "--train", "5", "--test", "5", "--workers", "-2", "--out", "{d}/new"], "--workers"),
    (["data", *LIS, "--train", "50", "--test", "5", "--out", "{d}/notes.txt"], "notes.txt"),
    (["show", *LIS, "--count", "-1"], "--count"),
    (["train", *LIS, "--mixer", "standard", "--dim", "8", "--epoch", "3", "--data", "{d}/data"], "--epoch"),
    (
        [
            "train",
            *LIS,
            "--mixer",
            "standard",
            "--dim",
            "8",
            "--epochs",
            "2",
            "--warmup-epochs",
            "0",
            "--data",
            "{d}/text",
            "--out",
            "{d}/run",
        ],
        "text/train.npz",
    ),
    (["train", *LIS, "--mixer", "standard", "--dim", "8", "--lr", "nan", "--data", "{d}/data"], "lr"),
    (["train", *LIS, "--mixer", "standard", "--dim", "8", "--set", "b1=1", "--data", "{d}/data"], "TrainConfig.b1"),
    (["train", *LIS, "--mixer", "standard", "--dim", "8", "--set", "seed=1", "--data", "{d}/data"], "'seed'"),
    # numbers past what the machine holds: refused before the run folder is made or anything compiles
    (
        ["train", *LIS, "--mixer", "standard", "--dim", "4000000", *SMALL, "--data", "{d}/data", "--out", "{d}/run"],
        "training D=4000000 (3 layers, length 12) at batch 32 needs at least",
    ),
    (
        ["train", *LIS, "--mixer", "standard", "--dim", str(10**20), *SMALL, "--data", "{d}/data", "--out", "{d}/run"],
        f"training D={10**20}",
    ),
    (
        [
            "train",
            *LIS,
            "--mixer",
            "standard",
            "--dim",
            "8",
            *SMALL,
            "--epochs",
            str(10**9),
            "--data",
            "{d}/data",
            "--out",
            "{d}/run",
        ],
        "TrainConfig.epochs: 1000000000 epochs",
    ),
    (["train", "--config", "{d}/huge-dim.json", "--out", "{d}/run"], "training D=4000000"),
    (["train", "--config", "{d}/huge-epochs.json", "--out", "{d}/run"], "TrainConfig.epochs: 1000000000 epochs"),
    (["data", *LIS, "--train", str(10**12), "--test", "5", "--out", "{d}/new"], "1000000000005 examples of lis(4"),
    (
        [
            "train",
            *LIS,
            "--mixer",
            "standard",
            "--dim",
            "8",
            *SMALL,
            "--seed",
            str(10**20),
            "--data",
            "{d}/data",
            "--out",
            "{d}/run",
        ],
        "TrainConfig.seed: must be an integer in [0, 4294967295]",
    ),
]
SWEEP_CASES = [
    (["--max-cells", "-1"], "--max-cells"),
    (["--set", "lr=-1"], "TrainConfig.lr"),
    (["--set", "batch_size=0"], "TrainConfig.batch_size"),
    (["--set", "train_examples=-5"], "Protocol.train_examples"),
    (["--shard", "-1/4"], "--shard"),
    (["--shard", "2/2"], "--shard"),
    (["--seeds", "-1"], "--seeds"),
    (["--dim", "8"], "--dim"),  # an abbreviation of --dims
    (["--max-cells", "0"], "--max-cells"),
    (["--set", f"epochs={10**9}"], "TrainConfig.epochs: 1000000000 epochs"),
    (["--dims", "4000000"], "training D=4000000"),
    (["--dims", str(10**20)], f"training D={10**20}"),
    (["--set", f"train_examples={10**12}"], "examples of lis(4"),
    (["--seeds", "0", str(2**32)], "TrainConfig.seed"),
    (["--lrs", "0"], "--lrs"),
    (["--lrs", "1e-3", "nan"], "--lrs"),
    (["--threshold", "0"], "--threshold"),
    (["--threshold", "1.5"], "--threshold"),
    (["--train-examples", "0"], "--train-examples"),
    (["--search"], "--search bisects a D grid"),  # SWEEP has one D
    (["--pack", "0"], "--pack"),
    (["--pack", "many"], "--pack"),
    (["--set", "solved_at=1.5"], "TrainConfig.solved_at"),
    (["--set", "check_every=10", "--set", "check_examples=500"], "check_examples 500 > valid_examples 100"),
    (["--mixers", "mamba3"], "'mamba3' is not a registered mixer"),
    (["--mixers", "linear+mamba3"], "'mamba3' is not a registered mixer"),
    (["--mixers", "linear,standard"], "ModelConfig.layer_mixers: 2 mixers for num_layers=3"),
    (["--hybrid", "attention"], "--hybrid"),
    (["--set", "short_conv=-1"], "ModelConfig.short_conv"),
    (["--set", "short_conv=65"], "ModelConfig.short_conv"),
]


def _exit_code(call) -> int:
    try:
        return call()
    except SystemExit as e:  # argparse's refusals
        return e.code


@pytest.mark.parametrize("argv,name", CLI_CASES, ids=[" ".join(a[:1] + a[-3:]) for a, _ in CLI_CASES])
def test_cli_refuses_bad_input_in_one_line(argv, name, folder, capsys):
    before = snapshot(folder)
    argv = [a.replace("{d}", str(folder)) for a in argv]
    assert _exit_code(lambda: cli.main(argv)) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error:") and name in err, err
    assert snapshot(folder) == before


@pytest.mark.parametrize("argv,name", SWEEP_CASES, ids=[" ".join(a) for a, _ in SWEEP_CASES])
def test_experiment_scripts_refuse_bad_input_in_one_line(argv, name, folder, capsys):
    before = snapshot(folder)
    code = _exit_code(lambda: fig1.main([*SWEEP, "--out", str(folder / "runs"), *argv]))
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and name in err, err
    assert snapshot(folder) == before


@pytest.mark.integration
def test_a_grid_of_days_asks_for_yes_before_writing_anything(folder, capsys):
    """The tiny preset at D 2048 for 300 epochs: weeks of CPU (not a GPU preset, yet refused)."""
    before = snapshot(folder)
    argv = [
        "--preset",
        "tiny",
        "--sizes",
        "6",
        "--dims",
        "2048",
        "--set",
        "epochs=300",
        "--out",
        str(folder / "runs"),
        "--data-root",
        str(folder / "data-root"),
    ]
    code = _exit_code(lambda: fig1.main(argv))
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "days on this" in err and "--yes" in err, err
    assert snapshot(folder) == before


@pytest.mark.parametrize(
    "changes,name",
    [
        ({"b1": 1.0}, "TrainConfig.b1"),
        ({"b2": -0.1}, "TrainConfig.b2"),
        ({"weight_decay": math.nan}, "TrainConfig.weight_decay"),
        ({"lr": math.inf}, "TrainConfig.lr"),
        ({"lr": "1e-3"}, "TrainConfig.lr"),
        ({"seed": -1}, "TrainConfig.seed"),
        ({"epochs": 2, "warmup_epochs": 3}, "TrainConfig.warmup_epochs"),
        ({"eval_examples": 0}, "TrainConfig.eval_examples"),
    ],
)
def test_train_config_names_the_bad_field(changes, name):
    with pytest.raises(JaxdpError, match=name.replace(".", r"\.")):
        TrainConfig(**changes)


@pytest.fixture(scope="module")
def model() -> Transformer:
    return Transformer(ModelConfig(dim=16, max_len=8, vocab_size=5, num_layers=1), rngs=nnx.Rngs(0))


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda m: m(jnp.array([[1, 2, 5]])), "token id 5 is outside the vocabulary"),
        (lambda m: m(np.array([[1, -1]])), "token id -1 is outside the vocabulary"),
        (lambda m: m(jnp.zeros((1, 9), jnp.int32)), "9 tokens exceed ModelConfig.max_len=8"),
        (lambda m: m(jnp.zeros(3, jnp.int32)), "tokens must be 2-D"),
        (lambda m: m.init_decode_state(1, 9), r"init_decode_state: max_len must be in \[1, ModelConfig.max_len=8\]"),
        (
            lambda m: m.decode_step(
                m.prefill(m.init_decode_state(1, 3), jnp.zeros((1, 3), jnp.int32))[1], jnp.zeros(1, jnp.int32)
            ),
            "decode_step: position 3 is past",
        ),
        (lambda m: m.decode_step(m.init_decode_state(1, 3), jnp.array([7])), "token id 7"),
    ],
)
@pytest.mark.integration
def test_the_model_refuses_inputs_it_cannot_embed(model, call, message):
    with pytest.raises(JaxdpError, match=message):
        call(model)


def test_model_construction_names_its_arguments():
    cfg = ModelConfig(dim=16, max_len=8, vocab_size=5)
    with pytest.raises(JaxdpError, match="rngs must be an nnx.Rngs"):
        Transformer(cfg, rngs=0)
    for dtype in (np.float32, jnp.bfloat16, np.dtype("float16")):  # numpy and jax dtypes are taken by name
        assert ModelConfig(dim=16, max_len=8, vocab_size=5, dtype=dtype).dtype == np.dtype(dtype).name
    with pytest.raises(JaxdpError, match="ModelConfig.dtype: 'int32' is not allowed"):
        ModelConfig(dim=16, max_len=8, vocab_size=5, dtype=np.int32)


def test_train_refuses_arrays_no_example_could_give(tmp_path):
    from jaxdp.tasks.dataset import Dataset
    from jaxdp.training.run import train

    task = tasks.get("lis", 4, value_range=8)
    good, _ = build(task, 64, 8, seed=0, progress=False)
    mc = ModelConfig(dim=8, max_len=task.max_len, vocab_size=len(task.vocab), num_layers=1)
    for changes, message in (
        ({"length": -good.length}, "prompt_len/length out of range"),
        ({"prompt_len": good.length + 1}, "prompt_len/length out of range"),
        ({"tokens": good.tokens.astype(np.int32) + 50}, "outside the vocabulary"),
    ):
        bad = Dataset(
            task, "train", 0, **{"tokens": good.tokens, "prompt_len": good.prompt_len, "length": good.length, **changes}
        )
        with pytest.raises(JaxdpError, match=message):
            train(tmp_path / "run", task, mc, TrainConfig(epochs=1, batch_size=32, warmup_epochs=0), bad)
    assert not (tmp_path / "run").exists()
