"""The README's two commands and CI stay in sync, and ruff keeps the code formatted and linted."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    return [line for line in lines if line.startswith("python3 -m venv .venv &&")]


def test_readme_starts_with_two_commands_and_ci_runs_the_test_one():
    setup_and_run, setup_and_test = _commands()[:2]
    assert setup_and_run.endswith("python -m experiments.demo")
    assert setup_and_test.endswith("python -m pytest")
    assert setup_and_test in (ROOT / ".ci" / "run").read_text().splitlines()


def test_ruff_formats_and_lints_the_repository():
    """`ruff format --check` and `ruff check` with pyproject's settings (line length 120)."""
    import subprocess
    import sys

    for command in (["format", "--check"], ["check"]):
        done = subprocess.run([sys.executable, "-m", "ruff", *command, "."], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, f"ruff {' '.join(command)}:\n{done.stdout}{done.stderr}"
    assert not [p for p in ROOT.rglob("*.py") if ".venv" not in p.parts and "fmt: " + "skip" in p.read_text()]
