"""Sweeps: restartable, shardable, and the same results however the grid is split."""

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from experiments import table2
from jaxdp import plots, sweep

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--preset", "tiny", "--tasks", "lis", "--sizes", "4", "--dims", "8", "--models", "standard", "linear",
        "--set", "epochs=1", "--set", "train_examples=256", "--set", "test_examples=16", "--set", "eval_examples=16",
        "--set", "batch_size=64", "--quiet"]  # fmt: skip


def fig1(*args, cwd=ROOT):
    return subprocess.Popen([sys.executable, "-m", "experiments.fig1", *TINY, *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "JAX_PLATFORMS": "cpu"})  # fmt: skip


def finish(proc):
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return out


def test_grid_shards_cover_every_cell_once():
    cells = sweep.grid({"lis": (4, 6), "ed": (3,)}, ["standard", "sparse"], {"lis": (8, 16), "ed": (8,)}, seeds=(0, 1))
    assert len(cells) == 2 * 2 * 2 * 2 + 1 * 2 * 1 * 2
    parts = [sweep.shard(cells, f"{i}/3") for i in range(3)]
    assert sorted(c.path for p in parts for c in p) == sorted(c.path for c in cells)
    for bad in ("3/3", "a/b", "1"):
        with pytest.raises(ValueError, match="--shard"):
            sweep.shard(cells, bad)
    with pytest.raises(ValueError, match="unknown model 'dense'"):
        sweep.grid({"lis": (4,)}, ["dense"], {"lis": (8,)})


def test_interrupted_sweep_finishes_only_missing_cells_and_shards_agree(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    out = finish(fig1("--out", str(one), "--data-root", str(tmp_path / "data"), "--max-cells", "1"))
    assert "1 cells trained, 0 already done, 1 left" in out
    first = sorted((one / "fig1" / "tiny").glob("**/result.json"))
    stamps = {p: p.stat().st_mtime_ns for p in first}
    out = finish(fig1("--out", str(one), "--data-root", str(tmp_path / "data")))
    assert "1 cells trained, 1 already done" in out
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items()), "finished cells must not rerun"
    # two concurrent shard processes, building the same dataset under a lock
    procs = [fig1("--out", str(two), "--data-root", str(tmp_path / "data2"), "--shard", f"{i}/2") for i in range(2)]
    for proc in procs:
        finish(proc)
    finish(fig1("--out", str(two), "--data-root", str(tmp_path / "data2")))  # collects; trains nothing
    a = (one / "fig1" / "tiny" / "results.csv").read_text()
    b = (two / "fig1" / "tiny" / "results.csv").read_text()
    assert a == b and len(a.splitlines()) == 3
    assert (one / "fig1" / "tiny" / "fig1.png").stat().st_size > 0


def test_bad_override_is_refused(capsys):
    from experiments import fig1 as fig1_module

    assert fig1_module.main(["--preset", "tiny", "--set", "epochs=many"]) == 2
    assert "--set epochs: 'many' is not a int" in capsys.readouterr().err
    assert fig1_module.main(["--preset", "tiny", "--set", "colour=red"]) == 2


def test_table2_dry_run_prints_the_papers_cells(capsys):
    assert table2.main(["--preset", "paper", "--dry-run"]) == 0
    out = capsys.readouterr().out
    for figure in ("0.027", "0.605", "9.584", "2.399"):
        assert f"| {figure} |" in out
    assert "60 cells, preset paper" in out  # 4 sizes x 5 dims x 3 models of Arithmetic


# ------------------------------------------------------------------------------------ plots


def synthetic_rows():
    """Accuracy 1 when D >= sqrt(L) * 4 (standard) or >= L / 2 (linear), else 0."""
    rows = []
    for size, L in ((4, 16), (8, 64), (16, 256)):
        for dim in (8, 16, 32, 64, 128):
            for model, need in (("standard", 4 * math.sqrt(L)), ("linear", L / 2)):
                rows.append({"task": "lis", "size": size, "L": L, "model": model, "dim": dim, "seed": 0,
                             "accuracy": float(dim >= need), "paper_gflops": dim * L / 1e3, "forward_gflops": dim * L / 5e2})  # fmt: skip
    return rows


def test_min_dims_and_exponents_match_the_rule():
    found = plots.min_dims(synthetic_rows())
    assert found[("lis", "standard")] == [(16, 16), (64, 32), (256, 64)]
    assert found[("lis", "linear")] == [(16, 8), (64, 32), (256, 128)]
    b, se = plots.fit_exponent(*zip(*found[("lis", "standard")]))
    assert b == pytest.approx(0.5) and se == pytest.approx(0.0, abs=1e-12)
    b, _ = plots.fit_exponent(*zip(*found[("lis", "linear")]))
    assert b == pytest.approx(1.0)  # D = L / 2 on this grid


def test_fit_exponent_standard_error_matches_closed_form():
    rng = np.random.default_rng(0)
    L = np.array([10.0, 20, 40, 80, 160])
    D = 3 * L**0.7 * np.exp(rng.normal(0, 0.05, size=5))
    b, se = plots.fit_exponent(L, D)
    x, y = np.log(L), np.log(D)
    X = np.stack([np.ones_like(x), x], 1)
    coef, res, *_ = np.linalg.lstsq(X, y, rcond=None)
    cov = res[0] / (len(x) - 2) * np.linalg.inv(X.T @ X)
    assert b == pytest.approx(coef[1]) and se == pytest.approx(math.sqrt(cov[1, 1]))
    assert math.isnan(plots.fit_exponent([1, 2], [1, 2])[1])


def test_table2_picks_the_cheapest_model_reaching_90_percent():
    rows = [dict(r, task="arithmetic") for r in synthetic_rows()]
    entries = {(e["model"], e["size"]): e for e in plots.table2(rows)}
    assert entries[("standard", 8)]["dim"] == 32 and entries[("linear", 16)]["dim"] == 128
    assert entries[("sparse", 4)]["dim"] is None
    assert "| standard |" in plots.table2_markdown(list(entries.values()))


def test_figures_are_written(tmp_path):
    rows = synthetic_rows()
    assert plots.heatmaps(rows, tmp_path / "h.png").stat().st_size > 1000
    assert plots.scaling(rows, tmp_path / "s.png").stat().st_size > 1000
