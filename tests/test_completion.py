"""Shell completion, run in the real shells: bash calls the completion function the script
defines; fish completes with ``complete -C``; zsh loads the script under compinit, and its
answers (what the function evals) are checked."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    bindir = tmp_path_factory.mktemp("bin")
    (bindir / "lossctl").write_text(f"#!/bin/sh\nexec {sys.executable} -m lossctl \"$@\"\n")
    (bindir / "lossctl").chmod(0o755)
    return dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}", PYTHONPATH=str(ROOT))


def _bash(env, *words: str) -> list[str]:
    script = ('eval "$(lossctl completion bash)"\n'
              f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
              "_lossctl_completion lossctl\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
    p = subprocess.run(["bash", "--norc", "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return [w for w in p.stdout.splitlines() if w]


@pytest.mark.parametrize("words, expected", [
    (("lossctl", "chec"), ["check"]),
    (("lossctl", "hub"), ["huber"]),
    (("lossctl", "ce", "--red"), ["--reduction"]),
    (("lossctl", "ce", "--reduction", ""), ["mean", "sum", "none"]),
    (("lossctl", "kl", "--reduction", "b"), ["batchmean"]),
    (("lossctl", "ce", "--dtype", ""), ["float64", "float32"]),
    (("lossctl", "ce", "--format", "j"), ["json"]),
    (("lossctl", "gradcheck", "smooth"), ["smooth-l1"]),
    (("lossctl", "completion", ""), ["bash", "zsh", "fish"]),
])
def test_bash_completes_commands_losses_options_and_choices(env, words, expected):
    assert _bash(env, *words) == expected


def test_bash_completes_commands_and_losses_together(env):
    got = _bash(env, "lossctl", "c")
    assert {"check", "compare", "completion", "ce", "ctc", "cosine-embedding"} <= set(got)
    assert "cross-entropy" not in got  # aliases are hidden


def test_bash_falls_back_to_file_paths_for_sources(env):
    # No words for a source: the script's `complete -o default` then completes file names.
    assert _bash(env, "lossctl", "ce", "--logits", "") == []
    p = subprocess.run(["bash", "--norc", "-c", 'eval "$(lossctl completion bash)"; complete -p lossctl'], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.stdout.strip() == "complete -o default -F _lossctl_completion lossctl"


def test_fish_completes(env):
    if shutil.which("fish") is None:  # where fish is missing, the script is still fish's `complete` line
        script = subprocess.run(["lossctl", "completion", "fish"], env=env, capture_output=True, text=True).stdout
        assert "complete --command lossctl --no-files" in script and "_LOSSCTL_COMPLETE=complete_fish" in script
        return
    script = ('lossctl completion fish | source\n'
              'complete -C "lossctl kl --reduction "\n'
              'echo ---\n'
              'complete -C "lossctl ce --logits tests/test_compl"\n')
    p = subprocess.run(["fish", "--no-config", "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    choices, files = p.stdout.split("---\n")
    assert sorted(choices.split()) == ["batchmean", "mean", "none", "sum"]
    assert files.split() == ["tests/test_completion.py"]


def test_zsh_script_loads_and_answers(env):
    def answer(line: str) -> str:
        e = dict(env, _LOSSCTL_COMPLETE="complete_zsh", _TYPER_COMPLETE_ARGS=line)
        return subprocess.run(["lossctl"], env=e, capture_output=True, text=True, timeout=60).stdout.strip()

    assert answer("lossctl ce --reduction ") == "_arguments '*: :((\"mean\"\n\"sum\"\n\"none\"))'"
    assert answer("lossctl ce --logits ") == "_files"
    if shutil.which("zsh") is None:  # where zsh is missing, only the answers above are checked
        return
    p = subprocess.run(["zsh", "-f", "-c", 'autoload -U compinit; compinit -u; eval "$(lossctl completion zsh)"; '
                        'print -r -- ${_comps[lossctl]}'], env=env, capture_output=True, text=True, timeout=60)
    assert p.stdout.strip() == "_lossctl_completion", p.stderr


def test_unknown_shell_is_a_usage_error(run_cli):
    r = run_cli(["completion", "tcsh"])
    assert r.code == 2 and "expected one of bash, zsh, fish" in r.stderr
