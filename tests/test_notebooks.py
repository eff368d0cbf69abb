"""The notebooks: each .ipynb paired with its py:percent twin, stored without outputs, openable
with the installed Jupyter kernel, and executed cell by cell in smoke mode (JAXDP_SMOKE=1) — a
cell that raises fails the suite (`test_a_raising_cell_fails_the_run` shows the runner does)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

pytestmark = pytest.mark.integration  # trains, runs commands or compiles whole models

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SMOKE_SECONDS = 120  # the budget per notebook on a 2-core CPU


def run_cells(notebook, cwd: Path, timeout: int = 600):
    """Run every cell in a fresh python3 kernel working in `cwd`, filling in the outputs; raises
    CellExecutionError at the first cell that raises."""
    NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    ).execute()
    return notebook


def execute(path: Path, cwd: Path):
    return run_cells(nbformat.read(path, as_version=4), cwd)


def test_the_five_notebooks_are_there():
    names = [p.stem for p in NOTEBOOKS]
    assert names == [
        "01_tasks_and_locality",
        "02_attention_patterns",
        "03_train_and_decode",
        "04_proofs",
        "05_theory_vs_practice",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_paired_with_its_text_twin(path):
    """Same cells in the .ipynb and the .py; saving in Jupyter keeps both (jupytext formats)."""
    twin = path.with_suffix(".py")
    assert twin.exists(), f"{twin.name} missing: run `jupytext --sync {path.relative_to(ROOT)}`"
    a, b = jupytext.read(path), jupytext.read(twin)
    cells = lambda nb: [(c.cell_type, c.source.strip()) for c in nb.cells]  # noqa: E731
    assert cells(a) == cells(b), f"{path.name} and {twin.name} differ: run `jupytext --sync {twin.relative_to(ROOT)}`"
    assert a.metadata["jupytext"]["formats"] == "ipynb,py:percent"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: strip outputs before committing"


def test_jupyter_and_the_notebooks_kernel_are_installed():
    """What opening a notebook needs after the README's setup: JupyterLab and the python3
    kernel the notebooks name, running this interpreter."""
    from jupyter_client.kernelspec import KernelSpecManager

    for path in NOTEBOOKS:
        assert nbformat.read(path, as_version=4).metadata["kernelspec"]["name"] == "python3"
    spec = KernelSpecManager().get_kernel_spec("python3")
    assert Path(spec.argv[0]).resolve() == Path(sys.executable).resolve() or spec.argv[0] == "python"
    version = subprocess.run([sys.executable, "-m", "jupyterlab", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.strip()[0].isdigit(), version.stderr


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_smoke_mode(path, tmp_path, monkeypatch):
    """Every cell runs without raising, in under two minutes, and the figures are drawn."""
    monkeypatch.setenv("JAXDP_SMOKE", "1")
    start = time.perf_counter()
    notebook = execute(path, tmp_path)
    seconds = time.perf_counter() - start
    assert seconds < SMOKE_SECONDS, f"{path.name} took {seconds:.0f} s in smoke mode"
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name} drew no figure"


def test_a_raising_cell_fails_the_run(tmp_path):
    """The runner above stops at a broken cell with its error, and runs nothing after it."""
    notebook = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}}
    )
    notebook.cells = [
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("raise RuntimeError('deliberately broken cell')"),
        nbformat.v4.new_code_cell("print('after')"),
    ]
    with pytest.raises(CellExecutionError, match="deliberately broken cell"):
        run_cells(notebook, tmp_path)
    assert [c.execution_count for c in notebook.cells] == [1, 2, None]
