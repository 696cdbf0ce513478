"""Help that teaches: grouped options, commands before losses, losses by family, examples last,
-h, --version, ``lossctl help NAME``, and the messages for names that are not commands or losses."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import lossctl
from lossctl.core.call import COMMANDS, GROUPS
from lossctl.losses import ALL_SPECS, families


def _sections(text: str) -> list[str]:
    """The headings of a click help page (``Inputs:``, ``Commands:``, ...), in order."""
    return [line[:-1] for line in text.splitlines() if re.fullmatch(r"[A-Z][A-Za-z ,:-]*:", line)]


def _examples(text: str) -> list[str]:
    lines = text.splitlines()
    assert "Examples:" in lines, text[-400:]
    tail = lines[lines.index("Examples:") + 1:]
    assert tail and all(line.startswith("  lossctl ") for line in tail), tail
    return [line.strip() for line in tail]


def test_families_hold_every_loss_exactly_once():
    names = [n for _, group in families() for n in group]
    assert sorted(names) == sorted(s.name for s in ALL_SPECS)
    assert len(names) == len(set(names))


def test_top_level_lists_commands_first_then_losses_by_family(run_cli):
    r = run_cli(["--help"])
    assert r.code == 0
    heads = _sections(r.stdout)
    assert heads[:3] == ["Usage: lossctl [OPTIONS] COMMAND [ARGS]...", "Options", "Commands"][1:] or heads[0] == "Options"
    assert heads.index("Commands") < min(i for i, h in enumerate(heads) if h.startswith("Losses: "))
    assert [h for h in heads if h.startswith("Losses: ")] == [f"Losses: {t}" for t, _ in families()]
    commands = r.stdout.split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    listed = [line.split()[0] for line in commands.splitlines() if line.startswith("  ") and not line.startswith("   ")]
    assert listed[: len(COMMANDS) + 1] == ["help", *COMMANDS]
    assert "--version" in r.stdout and "-h, --help" in r.stdout
    assert _examples(r.stdout)


def test_dash_h_is_help_everywhere(run_cli):
    for argv in ([], ["ce"], ["check"], ["gradcheck"], ["gradcheck", "ce"], ["list"]):
        long, short = run_cli([*argv, "--help"]), run_cli([*argv, "-h"])
        assert short.code == long.code == 0 and short.stdout == long.stdout


@pytest.mark.parametrize("name", [s.name for s in ALL_SPECS])
def test_loss_help_groups_its_options_and_ends_with_examples(run_cli, name):
    out = run_cli([name, "--help"]).stdout
    heads = _sections(out)
    groups = [h for h in heads if h in GROUPS]
    assert groups == [g for g in GROUPS if g in groups] and {"Inputs", "Parameters", "Output", "Checks"} <= set(groups)
    assert "Options:\n  -h, --help" in out  # ungrouped: only the help option
    assert heads[-1] == "Examples"
    ex = _examples(out)
    assert 2 <= len(ex) <= 3 and all(shlex.split(e)[1] == name for e in ex)


@pytest.mark.parametrize("command", ["check", "list", "info", "diff", "lm", "linear-ce", "record", "gradcheck",
                                     "compare", "help"])
def test_command_help_ends_with_examples(run_cli, command):
    out = run_cli([command, "--help"]).stdout
    ex = _examples(out)
    assert 2 <= len(ex) <= 3 and all(shlex.split(e)[1] == command for e in ex)


@pytest.mark.parametrize("argv", [
    ["ce", "--logits", "[[10,0,-10],[8,8,8]]", "--target", "[0,2]"],
    ["info", "--event-probs", "[0.5, 0.25, 0.125]", "--base", "2"],
    ["linear-ce", "--hidden", "[[1,0],[0,1]]", "--lm-head", "[[1,2],[3,4],[5,6]]", "--target", "[0,2]"],
    ["gradcheck", "ce", "--logits", "[[2,0,-1]]", "--target", "[0]"],
    ["compare", "bce", "--probs", "[0.9,0.2,1.0]", "--target", "[1,0,1]"],
    ["check", "examples/seeds.yaml"],
])
def test_inline_examples_run(run_cli, argv, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    r = run_cli(argv)
    assert r.code == 0, r.stderr


def test_help_command_shows_the_named_help(run_cli):
    assert run_cli(["help", "ce"]).stdout == run_cli(["ce", "--help"]).stdout
    assert run_cli(["help", "gradcheck", "ce"]).stdout == run_cli(["gradcheck", "ce", "--help"]).stdout
    assert run_cli(["help"]).stdout == run_cli(["--help"]).stdout
    bad = run_cli(["help", "nope"])
    assert bad.code == 2 and "no command or loss 'nope'" in bad.stderr


def test_version_is_an_option_not_a_command(run_cli):
    r = run_cli(["version"])
    assert r.code == 2 and "lossctl --version" in r.stderr
    assert run_cli(["--version"]).stdout.startswith(f"lossctl {lossctl.__version__}\n")


@pytest.mark.parametrize("argv, message", [
    (["CE"], "unknown loss 'CE'; did you mean 'ce'?"),
    (["Check", "s.yaml"], "unknown command 'Check'; did you mean 'check'?"),
    (["chek", "s.yaml"], "unknown command 'chek'; did you mean 'check'?"),
    (["zzzz"], "'zzzz' is neither a command nor a loss."),
])
def test_unknown_names(run_cli, argv, message):
    r = run_cli(argv)
    assert r.code == 2 and r.stderr.startswith(f"error: {message}"), r.stderr


@pytest.mark.parametrize("group", ["gradcheck", "record", "compare"])
def test_groups_without_a_loss_print_a_short_usage(run_cli, group):
    r = run_cli([group])
    assert r.code == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and f"lossctl {group} LOSS [OPTIONS]" in r.stderr


def test_gradcheck_errors_name_gradcheck(run_cli):
    r = run_cli(["gradcheck", "ce", "--logits", "[[1,2]]", "--target", "[0]", "--bogus", "1"])
    assert r.code == 2 and "lossctl gradcheck ce: No such option: --bogus" in r.stderr
    assert "'lossctl gradcheck ce --help'" in r.stderr


def test_help_texts_have_no_jargon(run_cli):
    from lossctl.core.call import COMMANDS

    pages = [run_cli([s.name, "--help"]).stdout for s in ALL_SPECS]
    pages += [run_cli([c, "--help"]).stdout for c in COMMANDS] + [run_cli(["--help"]).stdout]
    for page in pages:
        prose = re.sub(r"\S+\.(yaml|npy|npz)\S*", "", page)  # file names are not prose
        assert not re.search(r"\bseeds?\b|\bthe port\b|\boracle\b", prose, re.I), page[:200]


HELP_PAGES = [[]] + [[c] for c in COMMANDS] + [["help"]]
LOSSCTL = "#!/bin/sh\nexec {python} -m lossctl \"$@\"\n"


def _example_lines(text: str) -> list[str]:
    lines = text.splitlines()
    return [line.strip() for line in lines[lines.index("Examples:") + 1:] if line.strip()]


def _run_line(line: str, cwd: Path, env: dict[str, str], shell: str = "bash") -> subprocess.CompletedProcess:
    return subprocess.run([shell, "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("argv", HELP_PAGES, ids=lambda argv: " ".join(argv) or "lossctl")
def test_every_example_of_the_commands_help_runs(run_cli, tmp_path, argv):
    """Each line under "Examples:" of the top-level help and of each command's help runs as shown,
    in a shell, from a folder holding the shipped examples/, and exits 0. (A loss's own help
    shows its call with placeholder file names, logits.npy: a template, not run here.)"""
    root = Path(__file__).resolve().parents[1]
    lines = _example_lines(run_cli([*argv, "--help"]).stdout)
    assert lines
    (tmp_path / "examples").symlink_to(root / "examples")
    bin_dir, home = tmp_path / "bin", tmp_path / "home"
    bin_dir.mkdir()
    (home / ".config" / "fish" / "completions").mkdir(parents=True)  # where fish users keep completions
    (bin_dir / "lossctl").write_text(LOSSCTL.format(python=shlex.quote(sys.executable)))
    (bin_dir / "lossctl").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(home),
           "PYTHONPATH": os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])])}
    for line in lines:
        completion = re.fullmatch(r'eval "\$\((lossctl completion (\w+))\)"', line)
        if completion:  # a line for the named shell's start-up file: its script must come out whole
            inner = _run_line(completion.group(1), tmp_path, env)
            assert inner.returncode == 0 and inner.stdout.strip(), (line, inner.stderr)
            shell = completion.group(2)
            if shutil.which(shell) is None:
                continue
            prelude = "autoload -Uz compinit && compinit -u; " if shell == "zsh" else ""
            done = _run_line(prelude + line, tmp_path, env, shell=shell)
        else:
            done = _run_line(line, tmp_path, env)
        assert done.returncode == 0, (line, done.stdout[-2000:], done.stderr[-2000:])
