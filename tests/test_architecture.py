"""The layers do not leak: kernels are pure NumPy, rich and typer stay in rendering and the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lossctl"
MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


def _imports(path: Path) -> set[str]:
    """Top-level names of every module imported anywhere in the file (lazy imports included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).as_posix()


KERNELS = [p for p in MODULES if _rel(p).startswith("lossctl/losses/") or _rel(p) in (
    "lossctl/core/numerics.py", "lossctl/core/reduction.py", "lossctl/core/conversions.py", "lossctl/core/regularisation.py",
    "lossctl/core/exactsum.py", "lossctl/core/diff.py")]


@pytest.mark.parametrize("path", KERNELS, ids=_rel)
def test_kernels_import_only_numpy_and_the_standard_library(path):
    third_party = _imports(path) - {"numpy", "__future__"} - set(__import__("sys").stdlib_module_names)
    assert not third_party, f"{_rel(path)} imports {sorted(third_party)}"


@pytest.mark.parametrize("path", KERNELS, ids=_rel)
def test_kernels_do_no_io(path):
    text = path.read_text()
    for banned in ("print(", "sys.stdout", "sys.stderr", "open(", "sys.exit"):
        assert banned not in text, f"{_rel(path)} uses {banned}"


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_rich_and_typer_stay_in_rendering_and_the_cli(path):
    rel = _rel(path)
    used = _imports(path)
    if "typer" in used:
        assert rel.startswith("lossctl/cli/"), f"{rel} imports typer"
    if "rich" in used:
        assert rel.startswith("lossctl/cli/") or rel == "lossctl/render/table.py", f"{rel} imports rich"
    assert "click" not in used, f"{rel} imports click (use typer's exports)"


@pytest.mark.parametrize("path", [p for p in MODULES if not _rel(p).startswith("lossctl/cli/")], ids=_rel)
def test_only_the_cli_exits(path):
    assert "sys.exit(" not in path.read_text(), f"{_rel(path)} calls sys.exit"


def test_readers_know_nothing_of_losses():
    for path in (PACKAGE / "io").glob("*.py"):
        text = path.read_text()
        assert "losses" not in _imports(path) and "from ..losses" not in text and "registry" not in text, _rel(path)
