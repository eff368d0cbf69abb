"""The shape of the code, held: jaxdp's packages import only the layers below them (the README's
map), no module imports another's private names, no function is over 60 lines and no jaxdp
module over 400."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("jaxdp", "constructions", "experiments", "benchmarks")

#: what each part of jaxdp may import, besides itself and the package root (``__version__``):
#: the pipeline from the bottom (runtime) to the top (the command line)
ALLOWED = {
    "runtime": set(),
    "tasks": {"runtime"},
    "models": {"runtime"},
    "evaluation": {"runtime", "tasks", "models"},
    "training": {"runtime", "tasks", "models", "evaluation"},
    "sweeps": {"runtime", "tasks", "models", "evaluation", "training"},
    "args": {"runtime", "training"},
    "cli": {"runtime", "tasks", "models", "evaluation", "training", "args"},
    "__main__": {"runtime", "cli"},
}


def part(module: str) -> str:
    """The part of jaxdp a dotted module name belongs to: ``jaxdp.training.loop`` -> ``training``."""
    names = module.split(".")
    return names[1] if len(names) > 1 else ""


def imported_modules(path: Path) -> list[str]:
    """Every module `path` imports from this repository, at any depth of the file (function-level
    imports included); ``from jaxdp.sweeps import grids`` names ``jaxdp.sweeps.grids``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in OURS]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module.split(".")[0] in OURS:
            is_package = (ROOT / node.module.replace(".", "/")).is_dir()
            found += [f"{node.module}.{a.name}" if is_package else node.module for a in node.names]
    return found


def upward_imports(path: Path, module: str) -> list[str]:
    """The imports of `module` (at `path`) that break `ALLOWED`."""
    own = part(module)
    bad = []
    for name in imported_modules(path):
        if name.split(".")[0] != "jaxdp":
            bad.append(name)  # jaxdp never imports constructions, experiments or benchmarks
        elif part(name) not in ("", "__version__", own) and part(name) not in ALLOWED[own]:
            bad.append(name)
    return bad


def jaxdp_modules() -> list[tuple[Path, str]]:
    return [(p, ".".join(p.relative_to(ROOT).with_suffix("").parts)) for p in sorted((ROOT / "jaxdp").rglob("*.py"))]


def test_every_part_of_jaxdp_has_its_layer():
    parts = {part(module) for _, module in jaxdp_modules()} - {"__init__"}
    assert parts == set(ALLOWED)


def test_jaxdp_imports_only_the_layers_below():
    bad = {module: upward_imports(path, module) for path, module in jaxdp_modules()}
    assert {module: names for module, names in bad.items() if names} == {}


def test_the_layer_rule_catches_an_upward_import(tmp_path):
    f = tmp_path / "m.py"
    f.write_text(
        "from jaxdp.sweeps import grids\nimport jaxdp.runtime.files\n\ndef g():\n    from constructions import mlp\n"
    )
    assert upward_imports(f, "jaxdp.training.loop") == ["jaxdp.sweeps.grids", "constructions.mlp"]
    assert upward_imports(f, "jaxdp.sweeps.collect") == ["constructions.mlp"]


def private_imports(path: Path) -> list[str]:
    """`from a.b import _x`, and `module._x` for modules imported from this repository."""
    tree = ast.parse(path.read_text())
    found, modules = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [
                f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_") and a.name != "__version__"
            ]
            if node.module.split(".")[0] in OURS:
                modules |= {a.asname or a.name for a in node.names}
        elif isinstance(node, ast.Import):
            modules |= {a.asname or a.name for a in node.names if a.name.split(".")[0] in OURS}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            found.append(f"{node.value.id}.{node.attr}")
    return found


@pytest.mark.parametrize("package", ["jaxdp", "constructions", "experiments"])
def test_no_module_imports_another_modules_private_names(package):
    bad = {str(p.relative_to(ROOT)): private_imports(p) for p in sorted((ROOT / package).rglob("*.py"))}
    assert {p: names for p, names in bad.items() if names} == {}


def test_the_private_rule_catches_a_private_import(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("from constructions.attention import _x\nfrom constructions import mlp\nmlp._y\nimport os\nos._exit\n")
    assert private_imports(f) == ["constructions.attention._x", "mlp._y"]


def long_functions(path: Path, limit: int = 60) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > limit
    ]


@pytest.mark.parametrize("package", ["jaxdp", "constructions", "experiments"])
def test_no_function_is_over_60_lines(package):
    assert [name for p in sorted((ROOT / package).rglob("*.py")) for name in long_functions(p)] == []


def test_no_jaxdp_module_is_over_400_lines():
    long = {module: n for path, module in jaxdp_modules() if (n := len(path.read_text().splitlines())) > 400}
    assert long == {}


def test_the_readmes_code_map_lists_every_module():
    """Every jaxdp module (the mixers aside: one per mixer, under ``mixers/``) has its line in the
    README's code map, under its package."""
    text = (ROOT / "README.md").read_text()
    block = text[text.index("## Code map") :].split("```")[1]
    package, listed = "", set()
    for line in block.splitlines():
        name = line.strip().split(" ")[0]
        if line.startswith("  ") and not line.startswith("    ") and name.endswith("/"):
            package = name
        elif name.endswith(".py"):
            listed.add(f"{package}{name}" if line.startswith("    ") else name)
    wanted = {
        str(p.relative_to(ROOT / "jaxdp"))
        for p in (ROOT / "jaxdp").rglob("*.py")
        if p.name not in ("__init__.py", "__main__.py") and "mixers" not in p.parts
    }
    assert sorted(wanted - listed) == []
