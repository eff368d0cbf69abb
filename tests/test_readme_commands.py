"""Every ``python -m <module> …`` line in the shell blocks of the README and the docs/ pages
parses with that module's own command line as the code has it now: a renamed flag, a removed
choice or a wrong module name in the docs fails here. Each command is parsed, never run (the
parser stops right after parsing)."""

import argparse
import importlib
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NOT_OURS = {"pytest", "venv", "pip"}


def shell_blocks(text: str) -> list[str]:
    """The bodies of the fenced ```bash / ```sh blocks."""
    blocks, body, language = [], None, None
    for line in text.splitlines():
        if line.startswith("```"):
            if body is None:
                body, language = [], line[3:].strip()
            else:
                if language in ("bash", "sh"):
                    blocks.append("\n".join(body) + "\n")
                body = None
        elif body is not None:
            body.append(line)
    return blocks


def readme_commands() -> list[tuple[str, list[str]]]:
    """(module, argv) for each ``python -m`` command of the pages' shell blocks, with
    continuation lines joined and comments dropped."""
    out = []
    for block in (b for page in PAGES for b in shell_blocks(page.read_text())):
        for line in block.replace("\\\n", " ").splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            words = list(lexer)
            for i, word in enumerate(words[:-2]):
                if word.endswith(("python", "python3")) and words[i + 1] == "-m" and words[i + 2] not in NOT_OURS:
                    rest = words[i + 3 :]
                    ends = [j for j, w in enumerate(rest) if w in ("&&", "||", "|", ";", "&")]
                    out.append((words[i + 2], rest[: ends[0]] if ends else rest))
    return out


class Parsed(BaseException):
    """Raised by the patched parser once a command line has parsed (BaseException: nothing in
    the commands catches it)."""


def test_the_readme_quotes_commands_of_every_entry_point():
    modules = {m for m, _ in readme_commands()}
    assert {"jaxdp", "experiments.fig1", "experiments.fig2", "experiments.demo", "constructions.report"} <= modules


@pytest.mark.parametrize("module, argv", readme_commands(), ids=lambda x: x if isinstance(x, str) else " ".join(x))
def test_readme_command_parses(module, argv, monkeypatch):
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        raise Parsed(original(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    entry = importlib.import_module(module if module != "jaxdp" else "jaxdp.cli")
    with pytest.raises(Parsed):
        entry.main(argv)
