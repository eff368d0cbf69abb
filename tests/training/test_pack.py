"""Packing (`jaxdp.training.pack`): replicas of one cell that differ in seed or learning rate, trained as
one vmapped program, against the same runs trained alone through `jaxdp.training.run.train`."""

import json
import os
import signal
import time

import numpy as np
import pytest

from jaxdp import tasks
from jaxdp.models import ModelConfig
from jaxdp.runtime.errors import TrainingError
from jaxdp.runtime.interrupts import Interrupted
from jaxdp.tasks import builder
from jaxdp.training import pack
from jaxdp.training.protocol import TrainConfig
from jaxdp.training.run import train
from tests.faults.common import params

pytestmark = pytest.mark.integration  # trains, runs commands or compiles whole models

TASK = tasks.get("lis", 4, value_range=16)
MODEL = ModelConfig(
    mixer="linear", dim=16, num_layers=1, max_len=TASK.max_len, vocab_size=len(TASK.vocab), dropout=0.1
)  # dropout: each replica's keys are its own
BASE = TrainConfig(
    epochs=4,
    batch_size=32,
    warmup_epochs=1,
    log_every=4,
    checkpoint_every=12,
    eval_examples=24,
    check_every=16,
    check_examples=24,
    solved_at=0.99,
    plateau_checks=1,
    plateau_delta=0.5,
)
#: (seed, lr) of each replica: seeds and learning rates both differ
REPLICAS = [(0, 3e-3), (1, 1e-2)]


@pytest.fixture(scope="module")
def data():
    train_set, test_set = builder.build(TASK, 512, 24, seed=0, progress=False)
    return train_set, test_set, builder.build_validation(train_set, test_set, 24)


def configs():
    return [TrainConfig(**{**BASE.to_dict(), "seed": seed, "lr": lr}) for seed, lr in REPLICAS]


def packed(folder, data, **kw):
    train_set, test_set, valid = data
    return pack.train_packed(
        [folder / f"r{i}" for i in range(len(REPLICAS))],
        TASK,
        MODEL,
        configs(),
        train_set,
        test_set,
        valid_set=valid,
        progress=False,
        **kw,
    )


def lines(run):
    """metrics.jsonl without its wall-clock field"""
    return [
        {k: v for k, v in json.loads(x).items() if k != "tokens_per_s"}
        for x in (run / "metrics.jsonl").read_text().splitlines()
    ]


def test_a_packed_replica_trains_as_it_does_alone(data, tmp_path):
    train_set, test_set, valid = data
    results = packed(tmp_path / "pack", data)
    for i, config in enumerate(configs()):
        alone = train(tmp_path / f"alone{i}", TASK, MODEL, config, train_set, test_set, valid_set=valid, progress=False)
        got, want = lines(tmp_path / "pack" / f"r{i}"), lines(tmp_path / f"alone{i}")
        assert [r["step"] for r in got] == [r["step"] for r in want]
        for a, b in zip(got, want):
            for key in ("loss", "lr", "valid_accuracy"):
                assert (key in a) == (key in b) and a.get(key, 0) == pytest.approx(b.get(key, 0), rel=2e-4, abs=1e-6)
        assert (results[i]["steps"], results[i]["stop_reason"]) == (alone["steps"], alone["stop_reason"])
        for x, y in zip(params(tmp_path / "pack" / f"r{i}"), params(tmp_path / f"alone{i}"), strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-3, atol=2e-5)
        digest = json.loads((tmp_path / f"alone{i}" / "config.json").read_text())["digest"]
        assert json.loads((tmp_path / "pack" / f"r{i}" / "config.json").read_text())["digest"] == digest


def test_a_stopped_replica_keeps_its_state_while_the_others_train(data):
    """The packed step with replica 1 inactive: replica 1's state comes back bit for bit, and
    replica 0 steps as it does with both active."""
    import jax
    import jax.numpy as jnp

    from jaxdp.training.step import init_state, optimizer

    train_set = data[0]
    starts = [init_state(MODEL, config, 16) for config in configs()]
    graphdef, unit = starts[0][0], optimizer(TrainConfig(**{**BASE.to_dict(), "lr": 1.0}), 16)
    step = pack.make_packed_step(graphdef, unit)
    lrs = jnp.asarray([lr for _, lr in REPLICAS], jnp.float32)
    arrays = (train_set.tokens, train_set.prompt_len, train_set.length)
    batch = [jnp.asarray(np.stack([a[:32]] * len(REPLICAS))) for a in arrays]

    def leaves(tree):  # numpy arrays, dropout keys as their raw data
        raw = lambda x: jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x  # noqa: E731
        return [np.asarray(raw(x)) for x in jax.tree.leaves(tree)]

    before = leaves(pack.stack([s for _, _, s in starts]))
    some = leaves(step(pack.stack([s for _, _, s in starts]), lrs, jnp.asarray([True, False]), *batch)[0])
    every = leaves(step(pack.stack([s for _, _, s in starts]), lrs, jnp.asarray([True, True]), *batch)[0])
    for a, b, c in zip(some, every, before, strict=True):
        np.testing.assert_array_equal(a[1], c[1])
        np.testing.assert_array_equal(a[0], b[0])
    assert any(not np.array_equal(b[1], c[1]) for b, c in zip(every, before))


def test_a_pack_cut_by_sigterm_resumes_and_ends_as_an_uninterrupted_one(data, tmp_path, monkeypatch):
    whole = packed(tmp_path / "whole", data)
    passes = iter(range(10**6))

    def sigterm_at_step_21(name):
        if name == "train.step" and next(passes) == 20:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(pack.faults, "point", sigterm_at_step_21)
    with pytest.raises(Interrupted):
        packed(tmp_path / "cut", data)
    monkeypatch.undo()
    cut_at = []  # each replica's training seconds, as its step-21 checkpoint carries them
    for i in range(len(REPLICAS)):
        folder = tmp_path / "cut" / f"r{i}" / "checkpoints"
        assert max(int(p.name) for p in folder.iterdir() if p.name.isdigit()) == 21
        cut_at.append(json.loads((folder / "21" / "meta" / "metadata").read_text())["train_seconds"])
    started = time.perf_counter()
    resumed = packed(tmp_path / "cut", data)
    second_launch = time.perf_counter() - started
    for i in range(len(REPLICAS)):
        assert 0 < cut_at[i] < resumed[i]["train_seconds"] < cut_at[i] + second_launch
        assert {k: v for k, v in resumed[i].items() if k != "train_seconds"} == {
            k: v for k, v in whole[i].items() if k != "train_seconds"
        }
        assert lines(tmp_path / "cut" / f"r{i}") == lines(tmp_path / "whole" / f"r{i}")
        for x, y in zip(params(tmp_path / "cut" / f"r{i}"), params(tmp_path / "whole" / f"r{i}"), strict=True):
            np.testing.assert_array_equal(x, y)


def test_a_pack_refuses_runs_that_differ_in_more_than_seed_and_lr(data, tmp_path):
    train_set, test_set, valid = data
    other = [configs()[0], TrainConfig(**{**BASE.to_dict(), "epochs": 5})]
    with pytest.raises(TrainingError, match="differ in epochs"):
        pack.train_packed([tmp_path / "a", tmp_path / "b"], TASK, MODEL, other, train_set, test_set, valid_set=valid)
    assert pack.parse_size("off") == 1 and pack.parse_size("3") == 3
    for bad in ("0", "-1", "two"):
        with pytest.raises(ValueError, match="--pack"):
            pack.parse_size(bad)


def test_a_sweep_packs_a_cells_learning_rates_into_their_own_run_folders(tmp_path, capsys, monkeypatch):
    """`--pack 2` hands the two learning rates of one cell to one pack; each lands in the folder
    its own protocol names, as a run trained alone would (that they train alike: above)."""
    from experiments import fig1
    from jaxdp.sweeps import collect, grids

    calls = []
    real = pack.train_packed
    monkeypatch.setattr(pack, "train_packed", lambda dirs, *a, **k: calls.append(len(dirs)) or real(dirs, *a, **k))
    argv = [
        "--preset",
        "tiny",
        "--tasks",
        "lis",
        "--sizes",
        "4",
        "--dims",
        "8",
        "--mixers",
        "linear",
        "--lrs",
        "1e-3",
        "3e-3",
        "--set",
        "epochs=1",
        "--set",
        "train_examples=256",
        "--set",
        "test_examples=16",
        "--set",
        "valid_examples=16",
        "--set",
        "eval_examples=16",
        "--set",
        "batch_size=32",
        "--quiet",
        "--pack",
        "2",
        "--out",
        str(tmp_path),
        "--data-root",
        str(tmp_path / "data"),
    ]
    assert fig1.main(argv) == 0, capsys.readouterr().err
    assert calls == [2]
    rows = collect.read_csv(tmp_path / "fig1" / "tiny" / "results.csv")
    cells = grids.grid({"lis": (4,)}, ["linear"], {"lis": (8,)}, lrs=(1e-3, 3e-3))
    protocol = fig1.common.preset_from_args(fig1.common.parser("fig1", "", (), ()).parse_args(argv)).protocol
    assert sorted(r["digest"] for r in rows) == sorted(grids.plan(c, protocol).path.rsplit("/", 1)[1] for c in cells)
    assert all(r["steps"] == 8 and r["stop_reason"] == "budget" for r in rows)
    # the cost estimate counts what is left: nothing of this grid; under a search from the middle
    # of D 8, 16, the probe of D = 8 is done and missed 90%, so D = 16 is left at both lrs
    capsys.readouterr()
    assert fig1.main([*argv, "--dry-run"]) == 0
    assert "2 of 2 cells finished; estimated cost: 0 cells" in capsys.readouterr().out
    assert fig1.main([*argv, "--dry-run", "--dims", "8", "16", "--search", "--search-from", "middle"]) == 0
    said = capsys.readouterr().out
    assert "trains at most 4 of these 4 cells (1 column), at most 2 still to train; estimated cost: 2 cells" in said


def test_a_pack_is_sized_to_fit_the_device_and_refused_when_it_cannot():
    from jaxdp.runtime import capacity
    from jaxdp.training import limits

    have, _ = capacity.device_memory()
    small, huge = MODEL, ModelConfig(mixer="standard", dim=4096, max_len=500, vocab_size=30)
    assert limits.replicas_that_fit(small, 32, TASK.max_len, 8) == 8
    assert limits.replicas_that_fit(huge, 512, 500, 8) == 1
    k = limits.replicas_that_fit(MODEL, 10**5, TASK.max_len, 10**6)
    assert 1 <= k and (k == 1 or k * limits.PACK_MARGIN * limits.training_bytes(MODEL, 10**5, TASK.max_len) <= have)
    with pytest.raises(Exception, match="packed replicas needs at least"):
        limits.check_training_memory(huge, 512, 500, replicas=64)
