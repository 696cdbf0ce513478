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
