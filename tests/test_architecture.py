"""The layers of lossctl, declared once and enforced by reading every import with ``ast``.

Every import of every module under ``lossctl/`` counts: absolute and relative, at the top and
inside functions. The rules hold for every module, with no list of exceptions:

* the layers below: a module imports only its own layer and the layers under it;
* no import cycle between modules;
* no module imports another module's ``_private`` name or reaches into another object's
  ``_private`` attribute (a private *module*, such as the compiled ``lossctl._kernels``, is
  imported by the one module that is its public face);
* ``typer`` only in the CLI; ``rich`` only in rendering and the CLI;
* ``sys.stdout``, ``sys.stderr``, ``sys.exit`` and ``print`` only in the CLI (rendering returns text
  or writes to a stream it is given);
* no ``--option`` spelling in a string of the core, the kernels or the library built on them:
  an error names an input by its key (:func:`lossctl.errors.ref`) and the CLI spells it.
"""

from __future__ import annotations

import ast
import re
import sys
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lossctl"

# The layers, lowest first: (name, the modules in it, the layers it builds on directly). A module
# may import its own layer and every layer below it (the closure of "builds on"). A module
# belongs to the layer of its longest matching prefix.
LAYERS = (
    ("errors", ("lossctl.errors",), ()),
    # the pure core: a call's keys, the registry, numerics, preparation, evaluation, streaming,
    # the kernels (losses/ and the compiled extension) and compute() (lossctl.api), their one entry.
    ("core", ("lossctl.core", "lossctl.losses", "lossctl._kernels", "lossctl.api"), ("errors",)),
    # arrays and files in and out; nothing of losses, the registry or rendering.
    ("io", ("lossctl.io",), ("errors",)),
    # the tools built on compute() that also read files (token streams) or compare conventions.
    # (and where rows are computed besides this process: lossctl.backends, e.g. a Dask cluster).
    ("library", ("lossctl.tokens", "lossctl.compare", "lossctl.gradcheck", "lossctl.backends"), ("core", "io")),
    # the package's front door: the public names and the version.
    ("front door", ("lossctl",), ("library",)),
    # check suites: load, run, update, record.
    ("suite", ("lossctl.suite",), ("library",)),
    # every human and machine output.
    ("render", ("lossctl.render",), ("suite", "front door")),
    # parse, call, render, pick the exit code.
    ("cli", ("lossctl.cli", "lossctl.__main__"), ("render",)),
)
CLI = "cli"
OUTPUT_LAYERS = ("render", "cli")
PURE_LAYERS = ("core",)
LIBRARY_LAYERS = ("core", "library")  # what a Python caller of lossctl.compute() meets
# "--x", and a bare "--" that code glues to a key ("--" + key, f"--{key}")
OPTION_SPELLING = re.compile(r"(?<![\w-])--(?:[a-z]|$)")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).parts)
    parts[-1] = parts[-1].split(".")[0]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


# Python modules, and compiled extensions by their C source (``_kernels.c`` is ``lossctl._kernels``).
SOURCES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
MODULES = set(SOURCES) | {_module_name(p) for p in PACKAGE.rglob("*.c")}


def layer_of(module: str) -> str:
    best = max(((len(prefix), name) for name, prefixes, _ in LAYERS for prefix in prefixes
                if module == prefix or module.startswith(prefix + ".")), default=None)
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best[1]


@cache
def allowed(layer: str) -> frozenset[str]:
    below = dict((name, uses) for name, _, uses in LAYERS)[layer]
    return frozenset({layer}).union(*(allowed(u) for u in below))


class Import:
    """One imported name: the module it comes from, the name (None for ``import x``), the line."""

    def __init__(self, module: str, name: str | None, line: int):
        self.module, self.name, self.line = module, name, line

    @property
    def target(self) -> str:
        """The lossctl module this import loads (the submodule when the name is one)."""
        if self.name and f"{self.module}.{self.name}" in MODULES:
            return f"{self.module}.{self.name}"
        return self.module


@cache
def tree(module: str) -> ast.Module:
    return ast.parse(SOURCES[module].read_text(encoding="utf-8"))


@cache
def imports(module: str) -> tuple[Import, ...]:
    """Every import in the module, relative ones resolved to absolute module names."""
    package = module.split(".") if SOURCES[module].name == "__init__.py" else module.split(".")[:-1]
    found = []
    for node in ast.walk(tree(module)):
        if isinstance(node, ast.Import):
            found += [Import(a.name, None, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            found += [Import(base, a.name, node.lineno) for a in node.names]
    return tuple(found)


def internal(module: str) -> list[Import]:
    return [i for i in imports(module) if i.module == "lossctl" or i.module.startswith("lossctl.")]


def graph() -> dict[str, set[str]]:
    return {m: {i.target for i in internal(m)} - {m} for m in SOURCES}


def _ids(modules):
    return [m for m in modules]


def test_every_module_is_in_a_layer():
    for module in MODULES:
        layer_of(module)


def test_the_layers_are_declared_lowest_first():
    seen = set()
    for name, _, uses in LAYERS:
        assert set(uses) <= seen, f"layer {name} builds on a layer declared after it"
        seen.add(name)


@pytest.mark.parametrize("module", sorted(SOURCES), ids=_ids(sorted(SOURCES)))
def test_a_module_imports_only_its_layer_and_the_layers_below(module):
    layer = layer_of(module)
    wrong = sorted({f"{i.target} ({layer_of(i.target)}, line {i.line})" for i in internal(module)
                    if layer_of(i.target) not in allowed(layer)})
    assert not wrong, f"{module} ({layer}) imports a layer above it or beside it: {wrong}"


def test_no_import_cycles():
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize("module", sorted(SOURCES), ids=_ids(sorted(SOURCES)))
def test_no_module_imports_another_modules_private_names(module):
    wrong = [f"{i.module}.{i.name} (line {i.line})" for i in internal(module)
             if i.name and i.name.startswith("_") and not i.name.startswith("__") and i.target == i.module]
    # attributes: x._name on anything but self/cls (another object's or module's private part)
    for node in ast.walk(tree(module)):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
            wrong.append(f"{ast.unparse(node)} (line {node.lineno})")
    assert not wrong, f"{module} uses private names of other modules or objects: {wrong}"


def test_a_private_module_has_one_public_face():
    importers: dict[str, set[str]] = {}
    for module in SOURCES:
        for i in internal(module):
            if i.target.rsplit(".", 1)[-1].startswith("_") and not i.target.endswith("__"):
                importers.setdefault(i.target, set()).add(module)
    assert all(len(v) == 1 for v in importers.values()), importers


def _third_party(module: str) -> set[str]:
    return {i.module.split(".")[0] for i in imports(module)}


@pytest.mark.parametrize("module", sorted(SOURCES), ids=_ids(sorted(SOURCES)))
def test_typer_only_in_the_cli_and_rich_only_in_rendering_and_the_cli(module):
    used = _third_party(module)
    layer = layer_of(module)
    if "typer" in used:
        assert layer == CLI, f"{module} imports typer"
    if "rich" in used:
        assert layer in OUTPUT_LAYERS, f"{module} imports rich"
    assert "click" not in used, f"{module} imports click (use typer's exports)"


@pytest.mark.parametrize("module", sorted(m for m in SOURCES if layer_of(m) != CLI),
                         ids=_ids(sorted(m for m in SOURCES if layer_of(m) != CLI)))
def test_only_the_cli_prints_writes_to_the_terminal_or_exits(module):
    wrong = []
    for node in ast.walk(tree(module)):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "sys"
                and node.attr in ("stdout", "stderr", "exit")):
            wrong.append(f"sys.{node.attr} (line {node.lineno})")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("print", "exit"):
            wrong.append(f"{node.func.id}() (line {node.lineno})")
    wrong += [f"from sys import {i.name} (line {i.line})" for i in imports(module)
              if i.module == "sys" and i.name in ("stdout", "stderr", "exit")]
    assert not wrong, f"{module}: {wrong}"


def _docstrings(t: ast.Module) -> set[int]:
    ids = set()
    for node in ast.walk(t):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


@pytest.mark.parametrize("module", sorted(m for m in SOURCES if layer_of(m) in LIBRARY_LAYERS),
                         ids=_ids(sorted(m for m in SOURCES if layer_of(m) in LIBRARY_LAYERS)))
def test_the_library_names_keys_not_options(module):
    """Strings of the core, the kernels and the library (messages, help) name a key
    (:func:`lossctl.errors.ref`); only docstrings may show a command line."""
    docs = _docstrings(tree(module))
    wrong = [f"line {n.lineno}: {n.value!r}" for n in ast.walk(tree(module))
             if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
             and OPTION_SPELLING.search(n.value)]
    assert not wrong, f"{module} spells options: {wrong}"


@pytest.mark.parametrize("module", sorted(m for m in SOURCES if layer_of(m) in PURE_LAYERS),
                         ids=_ids(sorted(m for m in SOURCES if layer_of(m) in PURE_LAYERS)))
def test_the_core_imports_only_numpy_and_the_standard_library(module):
    outside = {name for name in _third_party(module) if name not in sys.stdlib_module_names} - {"numpy", "lossctl"}
    assert not outside, f"{module} imports {sorted(outside)}"


@pytest.mark.parametrize("module", sorted(m for m in SOURCES if layer_of(m) in PURE_LAYERS),
                         ids=_ids(sorted(m for m in SOURCES if layer_of(m) in PURE_LAYERS)))
def test_the_core_opens_no_files(module):
    wrong = [n.lineno for n in ast.walk(tree(module))
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "open"]
    assert not wrong, f"{module} opens files at lines {wrong}"


def test_the_rules_see_relative_and_function_level_imports():
    """The parser resolves ``from ..x import y`` inside a function (a rule that missed them would pass vacuously)."""
    found = {i.target for i in internal("lossctl.core.kernels")}
    assert "lossctl._kernels" in found  # `from .. import _kernels`, inside compiled()
    assert layer_of("lossctl.losses.cross_entropy") == "core" and layer_of("lossctl") == "front door"
    assert "io" not in allowed("core") and "core" not in allowed("io") and "render" not in allowed("suite")


def test_no_test_skips_for_a_missing_package():
    """The optional packages are installed wherever the tests run: a test that needs one imports it
    (and fails without it) rather than skipping; only the standard library's platform modules may skip."""
    tests = Path(__file__).resolve().parent
    wrong = []
    for path in sorted(tests.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "importorskip"
                    and node.args and isinstance(node.args[0], ast.Constant)
                    and str(node.args[0].value).split(".")[0] not in sys.stdlib_module_names):
                wrong.append(f"{path.name}:{node.lineno} importorskip({node.args[0].value!r})")
    assert not wrong, wrong
