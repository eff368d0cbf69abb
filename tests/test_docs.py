"""The examples in docstrings, the README and the docs/ pages run and print what they claim, and
every page the README links exists."""

import doctest
import importlib
import pathlib
import re

import pytest

from jaxdp.models import mixers

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODULES = [
    "jaxdp.tasks",
    "jaxdp.models",
    "jaxdp.models.config",
    "jaxdp.models.masks",
    "jaxdp.models.flops",
    "jaxdp.runtime.registry",
    "constructions.residual",
    "constructions.program",
]


@pytest.mark.integration
@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks(page: pathlib.Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)], ids=lambda p: p.name)
def test_python_blocks_run(page):
    for block in python_blocks(page):
        exec(compile(block, str(page.relative_to(ROOT)), "exec"), {})


def test_the_pages_with_python_blocks_are_the_ones_expected():
    """A page whose example moved or vanished is noticed here, not silently skipped above."""
    assert {p.name for p in PAGES if python_blocks(p)} >= {"models.md", "proofs.md", "tasks.md"}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_of_a_page_exists(page):
    prose = re.sub(r"```.*?```|`[^`\n]*`", "", page.read_text(), flags=re.S)  # code is not a link
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", prose)
    missing = [link for link in links if "://" not in link and not (page.parent / link).exists()]
    assert missing == []


def test_the_readme_links_every_docs_page():
    text = (ROOT / "README.md").read_text()
    assert [p.name for p in sorted((ROOT / "docs").glob("*.md")) if f"](docs/{p.name})" not in text] == []


@pytest.mark.parametrize(
    "name",
    [
        n if n in ("standard", "sparse", "linear") else pytest.param(n, marks=pytest.mark.slow)
        for n in mixers.available()
    ],
)
def test_decode_example_works_for_every_mixer(name):
    """docs/models.md's decoding example, with each registered mixer in place of sparse (the paper's
    three in the default run; every mixer's decoding is checked against its forward in tests/models)."""
    block = next(b for b in python_blocks(ROOT / "docs" / "models.md") if "init_decode_state" in b)
    assert 'mixer="sparse"' in block
    exec(compile(block.replace('mixer="sparse"', f'mixer="{name}"'), f"models.md ({name})", "exec"), {})
