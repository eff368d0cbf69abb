"""The pigeonhole lower bounds against hand-computed values, and the scaling table's exponents."""

import itertools
import math
from pathlib import Path

import pytest

from constructions import bounds, scaling
from constructions.dp import edit_distance


def test_linear_bound_by_hand():
    # 1000 bits, depth 2, H = 1, 10 bits: K² + K ≥ 50 -> K = 7 (42 < 50 ≤ 56).
    assert bounds.min_dim_linear(1000, depth=2, heads=1, bits=10) == 7
    # H = 2: K² + K ≥ 25 -> K = 5, D = 10; and D = 8 would hold only 800 bits.
    assert bounds.min_dim_linear(1000, depth=2, heads=2, bits=10) == 10
    assert bounds.linear_state_bits(10, 2, 2, 10) == 1200 and bounds.linear_state_bits(8, 2, 2, 10) == 800
    assert bounds.b5_linear(1000, depth=2, heads=1, bits=10) == 7  # family 2^L by default


def test_sparse_bound_by_hand():
    # P = 20, B = 4: summaries at 3, 7, 11, 15, 19 and the last block 16..19 -> 8 tokens.
    assert bounds.sparse_visible_tokens(20, 4) == 8
    assert bounds.min_dim_sparse(1000, depth=2, visible=8, bits=10) == 7  # ⌈1000/160⌉
    assert bounds.b6_sparse(1000, prompt_len=20, block_size=4, depth=2, bits=10) == 7


def test_arithmetic_and_locality_bounds_by_hand():
    assert bounds.arithmetic_family_bits(3, 11) == pytest.approx(3 * math.log2(11) + 2)
    assert bounds.c1_arithmetic_linear(3, depth=1, heads=1, bits=1) == 4  # K² + K ≥ 12.38 -> 4
    assert bounds.c4_local_linear(40, depth=1, heads=2, bits=2) == 6  # K² + K ≥ 10 -> K = 3


@pytest.mark.parametrize("N,M", [(2, 2), (3, 3), (3, 4), (4, 4), (4, 5)])
def test_the_ed_family_has_distinct_tables(N, M):
    spec = edit_distance(N, M)
    tables = {
        spec.table((1,) + a, b)[1:, 1:].tobytes()
        for a in itertools.product((1, 2), repeat=N - 1)
        for b in itertools.product((1, 2), repeat=M)
    }
    assert len(tables) == 2 ** bounds.ed_family_bits(N, M)


def test_bounds_refuse_bad_arguments():
    with pytest.raises(ValueError, match="bits must be a positive integer"):
        bounds.min_dim_linear(10, depth=1, heads=1, bits=0)


def test_fitted_exponents():
    table = scaling.rows(scaling.sizes(400))
    fits = scaling.fits(table, 1000)
    assert abs(fits["standard"][0]) < 0.02 and abs(fits["local"][0]) < 0.02
    for compiler in ("sparse", "linear"):
        assert abs(fits[compiler][0] - 0.5) <= 0.15, (compiler, fits[compiler])
    assert 0.3 < fits["B.5"][0] < 0.5  # √(L / log L)


def test_scaling_command(tmp_path, capsys):
    assert scaling.main(["--max-n", "20", "--no-plot"]) == 0
    assert "fitted exponent" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        scaling.main(["--max-n", "2"])


def test_trained_results_are_found_paper_preset_first(tmp_path, monkeypatch):
    """The fig1 sweep writes runs/fig1/<preset>/results.csv; the most complete preset wins."""
    assert scaling.find_results(tmp_path) is None
    for preset in ("tiny", "cpu", "study"):
        path = tmp_path / "runs" / "fig1" / preset / "results.csv"
        path.parent.mkdir(parents=True)
        path.write_text("task,size,L,model,dim,seed,accuracy\n")
    assert scaling.find_results(tmp_path / "elsewhere", tmp_path) == tmp_path / "runs/fig1/study/results.csv"
    monkeypatch.chdir(tmp_path)
    assert scaling.find_results() == Path("runs/fig1/study/results.csv").absolute()


def test_trained_min_dims_are_read_per_task(tmp_path):
    from jaxdp.sweeps import collect

    def row(task, size, L, model, dim, accuracy):
        return dict(
            task=task,
            size=size,
            L=L,
            mixer=model,
            dim=dim,
            seed=0,
            accuracy=accuracy,
            cot_exact_match=0.0,
            token_accuracy=0.0,
            final_loss=1.0,
            steps=1,
            examples=10,
            paper_gflops=0.0,
            forward_gflops=0.0,
        )

    rows = [
        row("ed", 3, 30, "standard", 8, 0.5),
        row("ed", 3, 30, "standard", 16, 0.95),
        row("ed", 4, 42, "standard", 16, 0.8),
        row("ed", 4, 42, "standard", 32, 0.92),
        row("ed", 4, 42, "linear", 32, 0.2),
        row("lis", 4, 11, "standard", 8, 1.0),
    ]
    path = collect.write_csv(rows, tmp_path / "results.csv")
    assert scaling.empirical(path) == {
        "standard on ed": [(30, 16, ""), (42, 32, "")],
        "linear on ed": [(42, 32, "above")],
    }
    assert scaling.empirical(path, task="lis") == {"standard on lis": [(11, 8, "below")]}  # the grid's smallest D
    assert scaling.empirical(tmp_path / "missing.csv") == {}


def test_scaling_writes_under_runs_unless_told_and_reads_several_results(tmp_path, monkeypatch):
    """The default plot goes to runs/constructions/ (ignored by git), never over docs/scaling.png;
    trained points come from every --results file, labelled with their task."""
    from jaxdp.sweeps import collect

    monkeypatch.chdir(tmp_path)
    assert scaling.main(["--max-n", "20"]) == 0
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == [
        "runs/constructions/scaling.png"
    ]
    row = dict(
        size=3,
        seed=0,
        accuracy=1.0,
        teacher_forced_exact=1.0,
        cot_exact_match=1.0,
        token_accuracy=1.0,
        final_loss=0.1,
        steps=1,
        examples=10,
        paper_gflops=0.0,
        forward_gflops=0.0,
    )
    a = collect.write_csv([dict(row, task="lis", L=9, mixer="standard", dim=16)], tmp_path / "a.csv")
    b = collect.write_csv([dict(row, task="ed_local", L=54, mixer="window", dim=32)], tmp_path / "b.csv")
    assert scaling.empirical([a, b], task=None) == {
        "standard on lis": [(9, 16, "below")],
        "window on ed_local": [(54, 32, "below")],
    }
    assert scaling.main(["--max-n", "20", "--results", str(a), str(b), "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").stat().st_size > 10_000


def test_fitted_exponents_never_print_minus_zero():
    assert [scaling.exponent_text(b) for b in (-0.001, -0.0, 0.0, 0.456, -0.51)] == [
        "0.00",
        "0.00",
        "0.00",
        "0.46",
        "-0.51",
    ]
