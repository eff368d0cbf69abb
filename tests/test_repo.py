"""The README's two commands and CI stay in sync."""

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
