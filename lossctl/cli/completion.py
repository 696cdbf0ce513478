"""``lossctl completion bash|zsh|fish``: print the shell's completion script."""

from __future__ import annotations

import sys

import typer

from ..errors import UsageError
from ..render.completion import SHELLS, completion_script
from .help import Command, examples

COMPLETION_HELP = """Print the completion script for bash, zsh or fish.

The script completes the commands, the loss names, each command's options, the values of
options with a fixed set of choices (--reduction, --format, --dtype, --convention) and file
paths for inputs. It asks lossctl itself, so it follows new losses and options."""


def register(app: typer.Typer) -> None:
    app.command("completion", help=COMPLETION_HELP, short_help="Print the shell completion script (bash, zsh, fish).",
                cls=Command, epilog=examples('eval "$(lossctl completion bash)"', 'eval "$(lossctl completion zsh)"',
                                             "lossctl completion fish > ~/.config/fish/completions/lossctl.fish"))(completion)


def _shells(incomplete: str) -> list[str]:
    return [s for s in SHELLS if s.startswith(incomplete)]


def completion(shell: str = typer.Argument(..., metavar="SHELL", help="bash, zsh or fish.", autocompletion=_shells)) -> None:
    from typer.completion import get_completion_script

    if shell not in SHELLS:
        raise UsageError(f"completion: expected one of {', '.join(SHELLS)}, got {shell!r}")
    from .app import COMPLETE_VAR

    script = get_completion_script(prog_name="lossctl", complete_var=COMPLETE_VAR, shell=shell)
    sys.stdout.write(completion_script(shell, script))
