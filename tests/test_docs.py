"""The examples in docstrings and in the README run and print what they claim."""

import doctest
import importlib
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODULES = ["jaxdp.tasks", "jaxdp.models", "jaxdp.models.config", "jaxdp.models.masks", "jaxdp.flops",
           "constructions.residual", "constructions.program"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


def test_readme_decode_example_works_for_every_mixer():
    """The Models section's example, with each registered mixer in place of sparse."""
    from jaxdp.models import mixers

    block = next(b for b in re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
                 if "init_decode_state" in b)  # fmt: skip
    assert 'attention="sparse"' in block
    for name in mixers.available():
        exec(compile(block.replace('attention="sparse"', f'attention="{name}"'), f"README.md ({name})", "exec"), {})
