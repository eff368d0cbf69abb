"""Sweeps: restartable, shardable, and the same results however the grid is split."""

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from experiments import fig1 as fig1_module
from experiments import presets
from jaxdp.models import mixers
from jaxdp.sweeps import collect, figures, grids, tables
from jaxdp.training.protocol import EVALUATION, MECHANICS, option_names, parse_settings, settable

pytestmark = pytest.mark.integration  # trains, runs commands or compiles whole models

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--preset",
    "tiny",
    "--tasks",
    "lis",
    "--sizes",
    "4",
    "--dims",
    "8",
    "--mixers",
    "standard",
    "linear",
    "--set",
    "epochs=1",
    "--set",
    "train_examples=256",
    "--set",
    "test_examples=16",
    "--set",
    "eval_examples=16",
    "--set",
    "batch_size=64",
    "--quiet",
]


def fig1(*args, cwd=ROOT):
    return subprocess.Popen(
        [sys.executable, "-m", "experiments.fig1", *TINY, *args],
        cwd=cwd,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )


def finish(proc):
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return out


def fig1_here(capsys, *args) -> str:
    """experiments.fig1 in this process (no interpreter start-up); its stdout."""
    assert fig1_module.main([*TINY, *args]) == 0, capsys.readouterr().err[-3000:]
    return capsys.readouterr().out


def results(folder: Path) -> list[dict]:
    return collect.read_csv(folder / "fig1" / "tiny" / "results.csv")


def test_grid_shards_cover_every_cell_once():
    cells = grids.grid({"lis": (4, 6), "ed": (3,)}, ["standard", "sparse"], {"lis": (8, 16), "ed": (8,)}, seeds=(0, 1))
    assert len(cells) == 2 * 2 * 2 * 2 + 1 * 2 * 1 * 2
    parts = [grids.shard(cells, f"{i}/3") for i in range(3)]
    assert sorted(c.label for p in parts for c in p) == sorted(c.label for c in cells)
    for bad in ("3/3", "a/b", "1", "-1/4"):
        with pytest.raises(ValueError, match="--shard"):
            grids.shard(cells, bad)
    with pytest.raises(ValueError, match="unknown mixer 'dense'"):
        grids.grid({"lis": (4,)}, ["dense"], {"lis": (8,)})


@pytest.mark.slow  # 80 s; in the default run: tests/test_cli.py's rerun of a run folder's config and the
# committed results' digests (tests/experiments/test_committed_results.py)
def test_a_cell_is_found_by_its_whole_protocol(tmp_path, capsys):
    """Interrupted and finished sweeps, reruns with nothing changed, with an evaluation field
    changed (rescored, not retrained), with a training field changed (new cells beside the old),
    and a sub-grid (only its cells collected)."""
    args = ["--out", str(tmp_path), "--data-root", str(tmp_path / "data")]
    assert "1 cells trained, 0 rescored, 0 already done, 1 left" in fig1_here(capsys, *args, "--max-cells", "1")
    first = {p: p.stat().st_mtime_ns for p in tmp_path.glob("fig1/**/result.json")}
    assert "1 cells trained, 0 rescored, 1 already done" in fig1_here(capsys, *args)
    assert all(p.stat().st_mtime_ns == t for p, t in first.items()), "finished cells must not rerun"
    assert "0 cells trained, 0 rescored, 2 already done" in fig1_here(capsys, *args)
    old = results(tmp_path)
    assert len(old) == 2 and {r["epochs"] for r in old} == {1} and {r["examples"] for r in old} == {16}

    logs = {p: p.read_text() for p in tmp_path.glob("fig1/**/metrics.jsonl")}
    assert "0 cells trained, 2 rescored, 0 already done" in fig1_here(capsys, *args, "--set", "eval_examples=8")
    assert {r["examples"] for r in results(tmp_path)} == {8}
    assert {p: p.read_text() for p in tmp_path.glob("fig1/**/metrics.jsonl")} == logs, "rescoring must not train"

    assert "2 cells trained, 0 rescored, 0 already done" in fig1_here(capsys, *args, "--set", "epochs=2")
    new = results(tmp_path)
    assert {r["epochs"] for r in new} == {2} and {r["steps"] for r in new} == {8}
    assert not {r["digest"] for r in new} & {r["digest"] for r in old}, "two protocols, two digests"
    for a, b in zip(old, new):  # told apart by their columns
        assert (a["task"], a["size"], a["mixer"], a["dim"]) == (b["task"], b["size"], b["mixer"], b["dim"])
        assert a["epochs"] != b["epochs"] and a["digest"] != b["digest"]
    assert len(list(tmp_path.glob("fig1/tiny/lis/*/size=4/d=8/seed=0/*/result.json"))) == 4  # side by side

    sub_grid = ("--mixers", "standard", "--set", "eval_examples=8")
    assert "0 cells trained, 0 rescored, 1 already done" in fig1_here(capsys, *args, *sub_grid)
    assert [r["mixer"] for r in results(tmp_path)] == ["standard"], "a sub-grid collects only its cells"


@pytest.mark.slow  # the submitit test (tests/experiments/test_experiments.py) runs a sharded sweep by default
def test_concurrent_shards_give_the_same_results_as_one_process(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    finish(fig1("--out", str(one), "--data-root", str(tmp_path / "data")))
    # two concurrent shard processes, building the same dataset under a lock
    procs = [fig1("--out", str(two), "--data-root", str(tmp_path / "data2"), "--shard", f"{i}/2") for i in range(2)]
    for proc in procs:
        finish(proc)
    assert "0 cells trained" in finish(fig1("--out", str(two), "--data-root", str(tmp_path / "data2")))
    a = (one / "fig1" / "tiny" / "results.csv").read_text()
    b = (two / "fig1" / "tiny" / "results.csv").read_text()
    assert a == b and len(a.splitlines()) == 3
    assert (one / "fig1" / "tiny" / "fig1.png").stat().st_size > 0


@pytest.mark.parametrize(
    "setting,message",
    [
        ("epochs=many", "epochs: 'many' is not an int"),
        ("colour=red", "unknown setting 'colour'"),
        ("lr=-1", "TrainConfig.lr: must be a finite number in (0, inf), got -1.0"),
        ("batch_size=0", "TrainConfig.batch_size: must be an integer >= 1, got 0"),
        ("train_examples=-5", "Protocol.train_examples: must be an integer >= 1, got -5"),
        ("warmup_epochs=5", "TrainConfig.warmup_epochs: 5 is longer than the run (epochs=3)"),
        ("local_blocks=0", "ModelConfig.options.local_blocks: must be an integer >= 1, got 0"),
        ("sparse.window=3", "window is an option of window, not of sparse"),
        ("dtype=int8", "ModelConfig.dtype: 'int8' is not allowed"),
        ("lis.flavour=2", "lis: unknown option 'flavour'"),
        ("lr", "--set 'lr': use FIELD=VALUE"),
    ],
)
def test_bad_settings_are_refused_in_one_line(setting, message, capsys):
    assert fig1_module.main(["--preset", "tiny", "--set", setting, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_set_reaches_every_protocol_field():
    """--set addresses TrainConfig, ModelConfig (kernel options too), data fields and task options
    by name, and each lands in the run's identity (so in its folder's digest)."""
    changes = {
        "weight_decay": "0.1",
        "schedule": "constant",
        "dtype": "bfloat16",
        "local_blocks": "2",
        "block_size": "4",
        "b2": "0.99",
        "train_examples": "512",
        "lis.value_range": "30",
        "sparse.global_tokens": "2",
        "window.window": "5",
        "chunk_size": "16",
    }
    protocol = presets.PRESETS["tiny"].protocol.set(**parse_settings(f"{k}={v}" for k, v in changes.items()))
    cell = grids.Cell("lis", 4, "sparse", 120)  # D = 120: divisible by 4 and 5 heads
    p = grids.plan(cell, protocol)
    assert (p.train_config.weight_decay, p.train_config.schedule, p.train_config.b2) == (0.1, "constant", 0.99)
    assert (p.model_config.dtype, p.model_config.options.local_blocks, p.model_config.options.block_size) == (
        "bfloat16",
        2,
        4,
    )
    assert protocol.train_examples == 512 and p.task.options()["value_range"] == 30
    assert p.model_config.options.global_tokens == 2 and "chunk_size" not in p.model_config.to_dict()["options"]
    window = grids.plan(grids.Cell("lis", 4, "window", 120), protocol).model_config.options
    linear = grids.plan(grids.Cell("lis", 4, "linear", 120), protocol).model_config.options
    assert (window.window, window.block_size, linear.chunk_size) == (5, 4, 16)  # each mixer takes its own
    base = grids.plan(cell, presets.PRESETS["tiny"].protocol)
    assert p.path.rsplit("/", 1)[0] == base.path.rsplit("/", 1)[0] and p.path != base.path
    for name in settable():  # every settable field changes the digest unless it is mechanics or evaluation
        if name not in protocol.settings():
            continue  # an option this protocol leaves to each mixer's default
        value = protocol.settings()[name]
        other = {int: lambda v: v + 1, float: lambda v: v / 2 + 0.01, str: lambda v: v}.get(type(value))
        if other is None or isinstance(value, bool) or type(value) is str:
            continue
        changed = grids.plan(cell, protocol.set(**{name: other(value)}))
        foreign = name in option_names() and "sparse" not in mixers.owners(name)  # e.g. chunk_size: not sparse's
        same = name in MECHANICS + EVALUATION or name in ("test_examples", "valid_examples") or foreign
        assert (changed.path == p.path) == same, name


# ------------------------------------------------------------------------------------ plots


def synthetic_rows():
    """Accuracy 1 when D >= sqrt(L) * 4 (standard) or >= L / 2 (linear), else 0."""
    rows = []
    for size, L in ((4, 16), (8, 64), (16, 256)):
        for dim in (8, 16, 32, 64, 128):
            for model, need in (("standard", 4 * math.sqrt(L)), ("linear", L / 2)):
                rows.append(
                    {
                        "task": "lis",
                        "size": size,
                        "L": L,
                        "mixer": model,
                        "dim": dim,
                        "seed": 0,
                        "accuracy": float(dim >= need),
                        "paper_gflops": dim * L / 1e3,
                        "forward_gflops": dim * L / 5e2,
                    }
                )
    return rows


def test_min_dims_and_exponents_match_the_rule():
    found = tables.min_dims(synthetic_rows())
    assert found[("lis", "standard")] == [(16, 16), (64, 32), (256, 64)]
    assert found[("lis", "linear")] == [(64, 32), (256, 128)]  # at L = 16 the grid's smallest D, 8, reaches
    b, se = tables.fit_exponent(*zip(*found[("lis", "standard")]))
    assert b == pytest.approx(0.5) and se == pytest.approx(0.0, abs=1e-12)
    b, _ = tables.fit_exponent(*zip(*found[("lis", "linear")]))
    assert b == pytest.approx(1.0)  # D = L / 2 on this grid


def test_censored_min_d_is_marked_and_never_fitted():
    """The grid's smallest D reaching is an upper bound, no D reaching a lower one: neither is a
    measured min D, and an exponent needs three measured sizes."""
    rows = synthetic_rows() + [
        {**r, "mixer": "sparse", "accuracy": float(r["dim"] >= 64 and r["L"] == 16)}
        for r in synthetic_rows()
        if r["mixer"] == "linear"
    ]
    points = tables.min_d_points(rows)
    assert points[("lis", "linear")] == [(16, 8, "below"), (64, 32, ""), (256, 128, "")]
    assert points[("lis", "sparse")] == [(16, 64, ""), (64, 128, "above"), (256, 128, "above")]
    assert ("lis", "sparse") in tables.min_dims(rows) and tables.fitted_exponent(
        tables.min_dims(rows)[("lis", "linear")]
    ) is None
    table = tables.scaling_table(rows)
    assert "| lis | linear | (16, ≤ 8), (64, 32), (256, 128) | no exponent (2 uncensored sizes, 3 needed) |" in table
    assert "| lis | standard | (16, 16), (64, 32), (256, 64) | 0.50 ± 0.00 |" in table
    assert "| lis | sparse | (16, 64), (64, > 128), (256, > 128) | no exponent (1 uncensored size, 3 needed) |" in table


def test_min_d_table_gives_the_rules_smallest_d_and_the_best_score_where_none_reaches():
    rows = synthetic_rows() + [
        {**r, "mixer": "sparse", "accuracy": r["dim"] / 256} for r in synthetic_rows() if r["mixer"] == "linear"
    ]
    lines = {
        line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
        for line in tables.min_d_table(rows).splitlines()
        if line.startswith("| ") and "mixer" not in line
    }
    assert lines["standard"] == ["16", "32", "64"]  # D >= 4 sqrt(L) at L = 16, 64, 256
    assert lines["linear"] == ["≤ 8", "32", "128"]  # D >= L / 2; at L = 16 the grid's smallest D, 8, reaches
    assert lines["sparse"] == ["> 128 (0.500)"] * 3  # at most 128 / 256: no D reaches 90%
    assert "size 4 (L=16)" in tables.min_d_table(rows)


def test_fit_exponent_standard_error_matches_closed_form():
    rng = np.random.default_rng(0)
    L = np.array([10.0, 20, 40, 80, 160])
    D = 3 * L**0.7 * np.exp(rng.normal(0, 0.05, size=5))
    b, se = tables.fit_exponent(L, D)
    x, y = np.log(L), np.log(D)
    X = np.stack([np.ones_like(x), x], 1)
    coef, res, *_ = np.linalg.lstsq(X, y, rcond=None)
    cov = res[0] / (len(x) - 2) * np.linalg.inv(X.T @ X)
    assert b == pytest.approx(coef[1]) and se == pytest.approx(math.sqrt(cov[1, 1]))
    assert math.isnan(tables.fit_exponent([1, 2], [1, 2])[1])


def test_table2_picks_the_cheapest_model_reaching_90_percent():
    rows = [dict(r, task="arithmetic") for r in synthetic_rows()]
    entries = {(e["mixer"], e["size"]): e for e in tables.table2(rows)}
    assert entries[("standard", 8)]["dim"] == 32 and entries[("linear", 16)]["dim"] == 128
    assert entries[("sparse", 4)]["dim"] is None
    assert "| standard |" in tables.table2_markdown(list(entries.values()))


def test_figures_are_written(tmp_path):
    rows = synthetic_rows()
    assert figures.heatmaps(rows, tmp_path / "h.png").stat().st_size > 1000
    assert figures.scaling(rows, tmp_path / "s.png").stat().st_size > 1000


def test_the_scaling_figure_draws_equal_series_apart_with_their_own_points(tmp_path, monkeypatch):
    """Two series with the same min D at every L (a copy of linear) are drawn a factor DODGE apart
    in L, at the min D the table gives; the labels keep the exponent of the true points."""
    rows = synthetic_rows()
    rows = [r for r in rows if r["mixer"] != "sparse"] + [
        {**r, "mixer": "twin"} for r in rows if r["mixer"] == "linear"
    ]
    drawn = {}
    monkeypatch.setattr(figures, "save_figure", lambda fig, path: drawn.setdefault("fig", fig) and Path(path))
    figures.scaling(rows, tmp_path / "s.png")
    ax = drawn["fig"].axes[0]
    lines = {line.get_label().split(":")[0]: line for line in ax.lines if not line.get_label().startswith("_")}
    linear, twin = lines["linear"], lines["twin"]
    np.testing.assert_allclose(np.asarray(twin.get_xdata()) / np.asarray(linear.get_xdata()), figures.DODGE)
    assert list(twin.get_ydata()) == list(linear.get_ydata()) == [32, 128]  # L = 64, 256 (≤ 8 at 16: a triangle)
    assert linear.get_label().split(":")[1] == twin.get_label().split(":")[1]
