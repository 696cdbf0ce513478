"""Shared fixtures: run the CLI in-process through ``main(argv)`` (the real error boundary)."""

from __future__ import annotations

import io
import os
import sys

# Keras is an oracle here on its torch backend (the framework tests import it lazily).
os.environ.setdefault("KERAS_BACKEND", "torch")
from dataclasses import dataclass

import numpy as np
import pytest

from lossctl.cli.app import main


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """``run_cli(argv, stdin=b"...") -> CliResult`` through ``lossctl.cli.app.main``."""

    def run(argv: list[str], stdin: bytes | str | None = None) -> CliResult:
        if stdin is not None:
            data = stdin.encode() if isinstance(stdin, str) else stdin
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
        capsys.readouterr()
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def hash_files(root) -> dict[str, str]:
    """``{relative path: sha256}`` of every regular file under ``root`` (FIFOs, devices and
    unreadable files are recorded by their kind and size, without being opened)."""
    import hashlib
    import os
    import stat
    from pathlib import Path

    root = Path(root)
    out: dict[str, str] = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath, name)
            rel = p.relative_to(root).as_posix()
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                out[rel] = f"{stat.S_IFMT(st.st_mode):o}"
                continue
            try:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            except OSError:
                out[rel] = f"unreadable:{st.st_size}:{st.st_mtime_ns}"
    return out


@pytest.fixture
def file_hashes():
    """``file_hashes(dir)``: hash every file under ``dir``, to prove inputs are byte-identical afterwards."""
    return hash_files


# --------------------------------------------------------------------------- the oracles
# The frameworks lossctl reproduces (torch, Keras, JAX/optax, scikit-learn) are test oracles, not
# dependencies: the committed golden values (tests/fixtures/, made by tests/tools/) let the suite
# pass without them, and the live differential tests run where they are installed. CI installs
# them and sets LOSSCTL_REQUIRE_ORACLES=1 (.ci/run): there a missing oracle is a failure.
ORACLE_MODULES = frozenset({"torch", "keras", "jax", "jaxlib", "optax", "sklearn"})
REQUIRE_ORACLES = os.environ.get("LOSSCTL_REQUIRE_ORACLES", "") not in ("", "0")


def _missing_oracle(text: str) -> str | None:
    for name in sorted(ORACLE_MODULES):
        if f"No module named '{name}'" in text:
            return name
    return None


def _oracle_skip(rep, where: str, name: str) -> None:
    rep.outcome = "skipped"
    rep.longrepr = (where, 0, f"Skipped: the oracle {name} is not installed (pip install -e '.[oracle]'; "
                               "CI installs it and requires it)")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and not REQUIRE_ORACLES:
        name = _missing_oracle(str(rep.longrepr))
        if name is not None:
            _oracle_skip(rep, str(collector.path), name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and call.excinfo is not None and not REQUIRE_ORACLES:
        e = call.excinfo.value
        if isinstance(e, ImportError) and (e.name or "").split(".")[0] in ORACLE_MODULES:
            _oracle_skip(rep, str(item.path), e.name.split(".")[0])
