"""Shared fixtures: run the CLI in-process through ``main(argv)`` (the real error boundary)."""

from __future__ import annotations

import io
import sys
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
