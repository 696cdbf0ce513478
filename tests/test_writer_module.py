"""Every file lossctl writes goes through ``lossctl.io.writers``.

Two proofs: no other module of the package can write a file (the source is searched for every
way Python writes one), and each writer of the command line, run for real, commits its file
through :class:`lossctl.io.writers.TempFile` (temporary file, fsync, rename).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

import lossctl.io.writers as writers

PACKAGE = Path(writers.__file__).resolve().parents[1]
OWNER = PACKAGE / "io" / "writers.py"
WRITE_MODES = set("wax+")


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if p != OWNER)


def _dotted(node) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _mode(call: ast.Call, position: int) -> str | None:
    for kw in call.keywords:
        if kw.arg == "mode" and isinstance(kw.value, ast.Constant):
            return str(kw.value.value)
    if len(call.args) > position and isinstance(call.args[position], ast.Constant):
        return str(call.args[position].value)
    return None


def _first_arg_name(call: ast.Call) -> str:
    return _dotted(call.args[0]) if call.args else ""


def file_writes(source: str) -> list[tuple[int, str]]:
    """(line, what) for each way of writing a file in ``source``."""
    found = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            if "tempfile" in names or "shutil" in names and any(a.name in ("move", "copy", "copyfile", "copy2") for a in node.names):
                found.append((node.lineno, "imports tempfile/shutil writers"))
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        last = name.rsplit(".", 1)[-1]
        if (isinstance(node.func, ast.Name) and name == "open") or name in ("io.open", "builtins.open"):
            mode = _mode(node, 1) or "r"
            if WRITE_MODES & set(mode):
                found.append((node.lineno, f"open(..., {mode!r})"))
        elif last == "open" and isinstance(node.func, ast.Attribute) and name != "os.open":
            mode = _mode(node, 0) or "r"
            if WRITE_MODES & set(mode) and not name.endswith(("zf.open", "ZipFile.open")):
                found.append((node.lineno, f"{name}({mode!r})"))
        elif name == "os.open":
            flags = ast.unparse(node.args[1]) if len(node.args) > 1 else ""
            target = ast.unparse(node.args[0]) if node.args else ""
            if any(f in flags for f in ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")) and "devnull" not in target:
                found.append((node.lineno, f"os.open({target}, {flags})"))
        elif name == "os.fdopen":
            mode = _mode(node, 1) or "r"
            if WRITE_MODES & set(mode):
                found.append((node.lineno, f"os.fdopen(..., {mode!r})"))
        elif name in ("os.replace", "os.rename", "os.renames", "os.link", "os.symlink", "os.truncate",
                      "shutil.move", "shutil.copy", "shutil.copy2", "shutil.copyfile"):
            found.append((node.lineno, name))
        elif last in ("write_text", "write_bytes", "touch", "symlink_to", "hardlink_to") and isinstance(node.func, ast.Attribute):
            found.append((node.lineno, name))
        elif last in ("rename", "replace") and isinstance(node.func, ast.Attribute) and (
                (isinstance(node.func.value, ast.Call) and _dotted(node.func.value.func).endswith("Path"))
                or _dotted(node.func.value).split(".")[-1].lower().endswith(("path", "tmp"))):
            found.append((node.lineno, name))
        elif last in ("save", "savez", "savez_compressed", "savetxt", "tofile", "savefig", "to_csv", "to_parquet") \
                and _first_arg_name(node) not in ("buf", "self.file", "out", "tmp.file", "f"):
            found.append((node.lineno, f"{name}({_first_arg_name(node)}, ...)"))
        elif last in ("open_memmap", "memmap") and "r" != (_mode(node, 1) or "r+")[0]:
            found.append((node.lineno, f"{name}(mode={_mode(node, 1)!r})"))
        elif name.startswith("tempfile."):
            found.append((node.lineno, name))
    return found


def test_the_search_finds_each_way_of_writing():
    """The detector is live: each of these writes a file and is found."""
    samples = [
        "open(p, 'w')", "open(p, mode='ab')", "Path(x).open('w')", "os.replace(a, b)", "os.rename(a, b)",
        "import tempfile", "tempfile.mkstemp()", "np.save(path, a)", "fig.savefig(path)", "os.fdopen(fd, 'wb')",
        "os.open(p, os.O_WRONLY | os.O_CREAT)", "path.write_text('x')", "target.write_bytes(b'')", "tmp_path.replace(t)",
        "shutil.move(a, b)", "a.tofile(path)", "np.lib.format.open_memmap(p, mode='w+')",
    ]
    for code in samples:
        assert file_writes(code), code
    assert not file_writes("open(p)\nopen(p, 'rb')\nos.open(os.devnull, os.O_WRONLY)\nnp.save(buf, a)\n"
                           "name.replace('_', '-')\nos.fdopen(fd, 'rb')")


# Writes that are not files: standard output and error re-opened on their own descriptors
# when the caller closed them (lossctl.cli.app).
NOT_FILES = {("lossctl/cli/app.py", "open(..., 'w')")}


def test_no_module_but_the_writer_writes_a_file():
    offenders = []
    for path in _modules():
        rel = path.relative_to(PACKAGE.parent).as_posix()
        for line, what in file_writes(path.read_text(encoding="utf-8")):
            if (rel, what) not in NOT_FILES:
                offenders.append(f"{rel}:{line}: {what}")
    assert offenders == [], "write files through lossctl.io.writers:\n" + "\n".join(offenders)


# --------------------------------------------------------------------------- each writer, run


@pytest.fixture
def commits(monkeypatch):
    """The targets committed through TempFile during a test."""
    seen: list[Path] = []
    real = writers.TempFile.commit

    def commit(self, target=None):
        real(self, target)
        seen.append(Path(target or self.target).resolve())

    monkeypatch.setattr(writers.TempFile, "commit", commit)
    return seen


LOGITS = "[[10.0, 0.0, -10.0], [8.0, 8.0, 8.0]]"


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".csv", ".safetensors"])
@pytest.mark.parametrize("stream", [False, True])
def test_output_files_go_through_the_writer(run_cli, tmp_path, commits, monkeypatch, suffix, stream):
    if stream:
        monkeypatch.setenv("LOSSCTL_STREAM_MIN_BYTES", "1")
    out = tmp_path / f"o{suffix}"
    args = ["ce", "--logits", LOGITS, "--target", "[0, 2]", "-o", out] + (["--grad"] if suffix != ".npy" else [])
    r = run_cli(args)
    assert r.code == 0, r.stderr
    assert commits == [out.resolve()]
    assert f"wrote per-sample values (2 values)" in r.stderr
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary file left


def test_pages_plots_reports_and_suites_go_through_the_writer(run_cli, tmp_path, commits):
    page, plot, suite, report = tmp_path / "p.html", tmp_path / "h.svg", tmp_path / "s.yaml", tmp_path / "r.xml"
    assert run_cli(["ce", "--logits", LOGITS, "--target", "[0, 2]", "--html", page]).code == 0
    assert run_cli(["ce", "--logits", LOGITS, "--target", "[0, 2]", "--plot", plot]).code == 0
    assert run_cli(["record", "ce", "--logits", LOGITS, "--target", "[0, 2]", "--to", suite]).code == 0
    suite.write_text(suite.read_text().replace("expect: 0.549", "expect: 0.0"))
    assert run_cli(["check", suite, "--update"]).code == 0
    assert run_cli(["check", suite, "--junit", report]).code == 0
    assert commits == [page.resolve(), plot.resolve(), suite.resolve(), suite.resolve(), report.resolve()]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["p.html", "h.svg", "s.yaml", "r.xml"])
    assert "<testsuite" in report.read_text()
