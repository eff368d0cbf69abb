"""The experiment scripts: presets that fit the machine, Table 2 at the paper's L, a Figure 2
whose sparse window covers the locality, the demo, and the library's independence from them."""

import ast
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from experiments import fig1, fig2, presets, table2
from jaxdp import cli, tasks
from jaxdp.models import ModelConfig
from jaxdp.sweeps import collect, tables
from jaxdp.training.protocol import Protocol, TrainConfig

pytestmark = pytest.mark.integration  # trains, runs commands or compiles whole models

ROOT = Path(__file__).resolve().parents[2]


def test_the_library_imports_neither_constructions_nor_experiments():
    """Not even lazily, inside a function: jaxdp stands alone."""
    for path in (ROOT / "jaxdp").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert name.split(".")[0] not in ("constructions", "experiments"), (path, name)


def test_protocol_defaults_live_in_one_place():
    """The paper preset is the bare Protocol, and `train`'s flags default to its values."""
    assert presets.PRESETS["paper"].protocol == Protocol()
    assert Protocol().train == TrainConfig()
    args = cli._parser().parse_args(["train", "--task", "lis", "--size", "4", "--mixer", "standard", "--dim", "8"])
    assert all(getattr(args, field) is None for field in cli.TRAIN_FLAGS)  # unset: the protocol's default applies
    help_text = cli._parser()._subparsers._group_actions[0].choices["train"].format_help()
    for field, value in Protocol().settings().items():
        if field in cli.TRAIN_FLAGS:
            assert f"(default: {value})" in " ".join(help_text.split()), field


def test_without_a_gpu_the_default_is_tiny_and_gpu_presets_need_yes(capsys):
    if fig1.common.gpu_present():
        pytest.skip("this machine has a GPU")
    assert fig1.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "fig1, preset tiny: estimated cost:" in out and "36 cells, preset tiny" in out
    whole = re.search(r"estimated cost: 36 cells, (\S+) PFLOP training", out).group(1)
    # a search from the middle of D 8, 16, 32 trains at most two D per column: at most 16 and 32,
    # the same cells as the plain grid above (the tiny preset's D are 16 and 32)
    assert fig1.main(["--dry-run", "--search", "--search-from", "middle", "--dims", "8", "16", "32"]) == 0
    out = capsys.readouterr().out
    assert "trains at most 36 of these 54 cells (18 columns); estimated cost: 36 cells" in out
    assert f"36 cells, {whole} PFLOP training" in out
    assert fig1.main(["--preset", "gpu", "--out", "/nonexistent/never-written"]) == 2
    captured = capsys.readouterr()
    assert "preset gpu: estimated cost: 396 cells" in captured.out  # 3 tasks x 4 sizes x 3 models x 11 D
    assert "pass --yes" in captured.err and len(captured.err.strip().splitlines()) == 1
    assert not Path("/nonexistent/never-written").exists()


def test_the_cpu_preset_runs_lis_over_a_factor_4_in_l_with_the_new_mixers(capsys):
    """Its own tasks and mixers per script (issue 19's study), unless --tasks/--mixers say otherwise."""
    assert fig1.main(["--preset", "cpu", "--dry-run"]) == 0
    out = capsys.readouterr().out
    lengths = [tasks.get("lis", n, value_range=50).max_len - 1 for n in presets.PRESETS["cpu"].sizes["lis"]]
    assert max(lengths) >= 4 * min(lengths)
    assert "60 cells, preset cpu" in out and "/lis/window/" in out and "/lis/retention/" in out and "/ed/" not in out
    assert fig1.main(["--preset", "cpu", "--dry-run", "--mixers", "standard", "--tasks", "lis", "ed"]) == 0
    assert "16 cells, preset cpu" in capsys.readouterr().out  # 4 LIS sizes x 3 dims + 2 ED sizes x 2 dims


def test_the_gpu_preset_reaches_d_512_on_the_studys_protocol():
    gpu, study = presets.PRESETS["gpu"], presets.PRESETS["study"]
    assert max(gpu.dims["arithmetic"]) == 512 and gpu.protocol == study.protocol and gpu.lrs == study.lrs
    for dims in (*gpu.dims.values(), *study.dims.values()):
        assert all(1 < b / a <= 1.5 for a, b in zip(dims, dims[1:])), dims  # geometric, ratio at most 1.5
    assert min(gpu.sizes["lis"]) == max(study.sizes["lis"]) and min(gpu.sizes["arithmetic"]) == max(
        study.sizes["arithmetic"]
    )


def test_table2_dry_run_prints_the_papers_cells(capsys):
    assert table2.main(["--preset", "paper", "--dry-run"]) == 0
    out = capsys.readouterr().out
    for figure in ("0.027", "0.605", "9.584", "2.399"):
        assert f"| {figure} |" in out
    assert "60 cells, preset paper" in out  # 4 sizes x 5 dims x 3 models of Arithmetic
    assert tables.PAPER_TABLE2_L == tasks.PAPER_MAX_LENGTHS["arithmetic"] == (87, 221, 355, 505)


def _arithmetic_row(model: str, size: int, dim: int, accuracy: float) -> dict:
    """A results row made by the code a sweep uses (`collect.result_row`) from a run's config."""
    task = tasks.get("arithmetic", size)
    model_config = ModelConfig(mixer=model, dim=dim, max_len=task.max_len, vocab_size=len(task.vocab))
    config = {
        "task": {"name": "arithmetic", "size": size, "options": task.options()},
        "model": model_config.to_dict(),
        "train": TrainConfig().to_dict(),
        "data": {"train": {"count": 1000, "seed": 0}},
        "digest": "x",
    }
    return collect.result_row(config, {"accuracy": accuracy, "teacher_forced_exact": accuracy})


def test_results_driven_table2_uses_the_papers_lengths():
    """The standard model at the paper's D (64/128/128/128) reaches 90%, smaller ones do not: the
    table's paper column is 2·N·L at L = 87/221/355/505, within 2% of the paper's figures, and
    it names the D."""
    need = dict(zip(tasks.PAPER_SIZES["arithmetic"], (64, 128, 128, 128)))
    rows = [_arithmetic_row("standard", n, d, float(d >= need[n])) for n in need for d in (32, 64, 128, 256)]
    entries = {e["size"]: e for e in tables.table2(rows) if e["mixer"] == "standard"}
    for (n, D), L, figure in zip(need.items(), (87, 221, 355, 505), (0.027, 0.266, 0.426, 0.605)):
        e = entries[n]
        assert (e["dim"], e["paper_L"]) == (D, L)
        assert e["paper_gflops"] == pytest.approx(figure, rel=0.02)
        assert e["L"] == tasks.get("arithmetic", n).max_len - 1  # our full count is at our L
    text = tables.table2_markdown(list(entries.values()))
    assert "paper L=87, ours 85" in text and "D=64" in text


def test_fig2_windows_cover_the_locality(capsys):
    assert fig2.main(["--preset", "gpu", "--dry-run"]) == 0
    out = capsys.readouterr().out
    table = [line.split("|")[1:-1] for line in out.splitlines() if re.match(r"\| ed(_local)? \| \d", line)]
    rows = [
        dict(zip(("task", "size", "L", "m", "model", "variant", "B", "k", "kB", "covers"), (c.strip() for c in r)))
        for r in table
    ]
    local = [r for r in rows if r["task"] == "ed_local"]
    assert sorted({int(r["size"]) for r in local}) == list(tasks.PAPER_SIZES["ed_local"])
    for size in tasks.PAPER_SIZES["ed_local"]:
        mine = {r["variant"]: r for r in local if int(r["size"]) == size}
        assert set(mine) == {fig2.WINDOW, fig2.PAPER}
        window, paper = mine[fig2.WINDOW], mine[fig2.PAPER]
        m, B = int(window["m"]), int(window["B"])
        assert m == tasks.get("ed_local", size).max_locality() == 3 * size + 7
        assert int(window["kB"]) == int(window["k"]) * B >= m > (int(window["k"]) - 1) * B
        assert int(paper["k"]) == 1 and int(paper["kB"]) == B
    ed = [r for r in rows if r["task"] == "ed" and r["variant"] == fig2.WINDOW]
    assert ed and all(r["covers"] == "no" for r in ed)  # the control: ED's own m lies outside


@pytest.mark.slow  # 40 s; fig2's cells and variants are checked by its dry runs in the default run
def test_fig2_runs_both_windows_on_the_tiny_grid(tmp_path, capsys):
    args = [
        "--preset",
        "tiny",
        "--tasks",
        "ed_local",
        "--sizes",
        "3",
        "--dims",
        "16",
        "--mixers",
        "sparse",
        "--set",
        "epochs=1",
        "--set",
        "train_examples=128",
        "--set",
        "test_examples=8",
        "--set",
        "eval_examples=8",
        "--set",
        "batch_size=64",
        "--quiet",
        "--out",
        str(tmp_path),
        "--data-root",
        str(tmp_path / "data"),
    ]
    assert fig2.main(args) == 0
    out = capsys.readouterr().out
    rows = collect.read_csv(tmp_path / "fig2" / "tiny" / "results.csv")
    sparse = {r["variant"]: r for r in rows if r["mixer"] == "sparse"}
    m = tasks.get("ed_local", 3).max_locality()
    assert (
        sparse[fig2.PAPER]["local_blocks"] == 1
        and sparse[fig2.WINDOW]["local_blocks"] * sparse[fig2.WINDOW]["block_size"] >= m
    )
    assert "| ed_local | 3 |" in out and (tmp_path / "fig2" / "tiny" / "fig2.png").exists()


@pytest.mark.slow
def test_demo_trains_three_models_and_draws_the_heatmap(tmp_path):
    """The README's first command (about 5 minutes on 2 cores)."""
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.demo", "--out", str(tmp_path / "data"), "--runs", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| lis | 6 | standard |" in proc.stdout and "teacher_forced_exact" in proc.stdout
    assert "These are short runs" in proc.stdout
    assert (tmp_path / "runs" / "demo.png").stat().st_size > 1000
    assert len((tmp_path / "runs" / "results.csv").read_text().splitlines()) == 7


@pytest.mark.slow  # kept out of the default run's 15 minutes; run with -m slow
def test_submitit_job_array_gives_the_plain_runs_results_csv(tmp_path, monkeypatch):
    """`--launcher submitit` through submitit's local executor (one process per array task, as
    SLURM would run them): a 2-cell sweep in 2 tasks writes the same results.csv as one process,
    and the tasks keep their compiled steps in the sweep's compilation cache."""
    if importlib.util.find_spec("submitit") is None:  # not imported here: the code under test imports it
        pytest.skip("the slurm extra is not installed")
    argv = [
        "--preset",
        "tiny",
        "--tasks",
        "lis",
        "--sizes",
        "4",
        "--dims",
        "16",
        "--mixers",
        "standard",
        "sparse",
        "--set",
        "epochs=1",
        "--quiet",
        "--data-root",
        str(tmp_path / "data"),
    ]
    assert fig1.main(argv + ["--out", str(tmp_path / "plain")]) == 0
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)  # the tasks (subprocesses) use the sweep's
    assert (
        fig1.main(
            argv
            + [
                "--out",
                str(tmp_path / "array"),
                "--launcher",
                "submitit",
                "--cluster",
                "local",
                "--jobs",
                "2",
                "--gpus-per-task",
                "0",
            ]
        )
        == 0
    )
    plain, array = (tmp_path / name / "fig1" / "tiny" / "results.csv" for name in ("plain", "array"))
    assert array.read_text() == plain.read_text() and len(plain.read_text().splitlines()) == 3
    assert len(list((tmp_path / "array" / "fig1" / "tiny" / "submitit").glob("*_result.pkl"))) == 2
    assert any((tmp_path / "array" / "compile-cache").glob("*-cache")), "no compiled step was kept"


def test_a_compile_cache_that_is_a_file_is_refused_in_one_line(tmp_path, capsys):
    (tmp_path / "cache").write_text("not a folder")
    argv = [
        "--preset",
        "tiny",
        "--tasks",
        "lis",
        "--sizes",
        "4",
        "--dims",
        "16",
        "--mixers",
        "standard",
        "--out",
        str(tmp_path / "out"),
        "--compile-cache",
        str(tmp_path / "cache"),
        "--quiet",
    ]
    assert fig1.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --compile-cache: ") and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists() and (tmp_path / "cache").read_text() == "not a folder"
