"""docs/errors.md stays true: every ```console block is replayed in a fresh directory.

Each block runs in a fresh directory, after the file-making commands of the
blocks before it (a file made in one block is there in the next). ``$ lossctl ...`` lines run in-process through ``main(argv)``; other ``$`` lines
(``printf``, ``python -c``, ``head``, and lossctl commands with pipes or
redirections) run in bash. The printed lines (stdout and stderr together,
in any order) must be the ones the page shows, and the exit code the one its
section names (``## Exit N``; the warnings section: 0, or 3 with ``--strict``).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "errors.md"


def _commands():
    """(section code, command, expected output lines) for every command of every console block."""
    if not DOC.exists():
        return []
    out = []
    section_code = None
    block = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^## Exit (\d)", line)
        if m:
            section_code = int(m.group(1))
        elif line.startswith("## "):
            section_code = None
        if line.startswith("```console"):
            block = []
            continue
        if block is not None and line.startswith("```"):
            out.append((section_code, block))
            block = None
            continue
        if block is not None:
            if line.startswith("$ "):
                block.append([line[2:], []])
            elif block:
                block[-1][1].append(line)
    return out


BLOCKS = _commands()


def _is_setup(cmd: str) -> bool:
    return "lossctl" not in cmd


def _run_shell(cmd: str, cwd: Path) -> tuple[int, list[str]]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    script = f'lossctl() {{ "{sys.executable}" -m lossctl "$@"; }}\n{cmd}'
    p = subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=120, env=env)
    return p.returncode, (p.stdout + p.stderr).splitlines()


@pytest.mark.skipif(not BLOCKS, reason="docs/errors.md is not there")
@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_errors_page_examples_are_real(index, run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for _, earlier in BLOCKS[:index]:
        for cmd, _ in earlier:
            if _is_setup(cmd):
                assert _run_shell(cmd, tmp_path)[0] == 0, cmd
    section_code, block = BLOCKS[index]
    for cmd, expected in block:
        if cmd.startswith("lossctl ") and not re.search(r"[|<>]", cmd):
            r = run_cli(shlex.split(cmd)[1:], stdin=b"")
            code, lines = r.code, (r.stdout + r.stderr).splitlines()
        else:
            code, lines = _run_shell(cmd, tmp_path)
        assert sorted(lines) == sorted(expected), f"$ {cmd}"
        if _is_setup(cmd):
            assert code == 0, f"$ {cmd}: {lines}"
            continue
        if any(ln.startswith("error: internal") for ln in lines):
            want = 4
        elif any(ln.startswith("error: ") for ln in lines):
            want = section_code if section_code is not None else 3
        elif any(ln.startswith("check FAIL") for ln in lines):
            want = 1
        else:
            want = 0
        assert code == want, f"$ {cmd}: exit {code}, expected {want}"
