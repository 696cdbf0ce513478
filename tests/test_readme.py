"""Every ```console block of README.md that runs from the repository root is replayed:
the commands run, and their output (stdout then stderr) and exit codes are what the README shows.

Blocks marked ```text (the CI walkthrough, run in a scratch
directory) are documentation only; docs/errors.md has its own replay (test_docs_errors.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```console\n(.*?)^```", re.S | re.M)


def _commands(block: str):
    """[(command, expected output lines)] with multi-line quoted commands joined."""
    lines = block.splitlines()
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        assert line.startswith("$ "), f"README console block: expected a '$ ' line, got {line!r}"
        cmd = line[2:]
        while cmd.count("'") % 2:  # a quoted argument spans lines
            i += 1
            cmd += "\n" + lines[i]
        i += 1
        expected = []
        while i < len(lines) and not lines[i].startswith("$ "):
            expected.append(lines[i])
            i += 1
        out.append((cmd, expected))
    return out


def _blocks():
    text = (ROOT / "README.md").read_text()
    for n, m in enumerate(BLOCK.finditer(text)):
        block = m.group(1)
        if any(line.strip() == "..." for line in block.splitlines()):
            continue
        yield pytest.param(block, id=f"block{n}-" + block.splitlines()[0][2:40].replace(" ", "_"))


WIDTH = 100


def test_the_readme_states_the_width_its_blocks_are_replayed_at():
    assert f"`COLUMNS={WIDTH}`" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("block", list(_blocks()))
def test_readme_console_block(block, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "lossctl").write_text(f"#!/bin/sh\nexec {sys.executable} -m lossctl \"$@\"\n")
    (bindir / "lossctl").chmod(0o755)
    env = dict(os.environ, COLUMNS=str(WIDTH), PATH=f"{bindir}:{os.environ['PATH']}")
    last_code = 0
    for cmd, expected in _commands(block):
        if cmd == "echo $?":
            assert expected == [str(last_code)], f"exit code of the previous command: {last_code}"
            continue
        p = subprocess.run(["bash", "-c", cmd], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        last_code = p.returncode
        got = [line.rstrip() for line in (p.stdout + p.stderr).splitlines()]
        assert got == [line.rstrip() for line in expected], f"$ {cmd}"
