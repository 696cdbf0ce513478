"""How ``--help`` reads: options in their groups, commands before losses, losses by family, examples last.

Every command of lossctl is built with :class:`Command` (a loss, ``check``, ``list``, ...) or
:class:`Group` (the top level, ``record``, ``gradcheck``). A command's examples are its
``epilog``: one command line a line, shown verbatim under ``Examples:``.
"""

from __future__ import annotations

import re
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from ..core.call import GROUPS

# The help option's spellings on every command (click inherits them from the top context).
HELP_OPTIONS = ["-h", "--help"]
_PARENS = re.compile(r"\[default: \((.*?)\)\]", re.S)
# Options of a command that declare no group are shown under this heading, after the groups.
OTHER = "Options"


def format_grouped_options(command: Any, ctx: Any, formatter: Any) -> None:
    """The command's arguments, then its options under their group's heading (in
    :data:`lossctl.core.call.GROUPS` order, other headings after them), the ungrouped ones last."""
    arguments: list[tuple[str, str]] = []
    panels: dict[str, list[tuple[str, str]]] = {}
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        # a default the configuration may replace is given as text: shown without click's parentheses
        record = (record[0], _PARENS.sub(r"[default: \1]", record[1]))
        if param.param_type_name == "argument":
            arguments.append(record)
        else:
            panels.setdefault(getattr(param, "rich_help_panel", None) or OTHER, []).append(record)
    if arguments:
        with formatter.section("Arguments"):
            formatter.write_dl(arguments)
    order = [g for g in GROUPS if g in panels] + [p for p in panels if p not in GROUPS and p != OTHER]
    if OTHER in panels:
        order.append(OTHER)
    for panel in order:
        with formatter.section(panel):
            formatter.write_dl(panels[panel])


def format_examples(epilog: str | None, formatter: Any) -> None:
    """``epilog``'s lines (command lines) under ``Examples:``, verbatim (never re-wrapped)."""
    lines = [line for line in (epilog or "").splitlines() if line.strip()]
    if not lines:
        return
    with formatter.section("Examples"):
        for line in lines:
            formatter.write(" " * formatter.current_indent + line + "\n")


def examples(*lines: str) -> str:
    """The epilog of a command: its example command lines."""
    return "\n".join(lines)


class Command(TyperCommand):
    """A command whose help groups its options and ends with its examples."""

    def format_options(self, ctx: Any, formatter: Any) -> None:
        format_grouped_options(self, ctx, formatter)

    def format_epilog(self, ctx: Any, formatter: Any) -> None:
        format_examples(self.epilog, formatter)


class Group(TyperGroup):
    """A group of commands: its own options grouped, its commands listed (see ``command_sections``),
    its examples last."""

    def format_options(self, ctx: Any, formatter: Any) -> None:
        format_grouped_options(self, ctx, formatter)
        self.format_commands(ctx, formatter)

    def format_epilog(self, ctx: Any, formatter: Any) -> None:
        format_examples(self.epilog, formatter)

    def command_sections(self, ctx: Any) -> list[tuple[str, list[str]]]:
        """[(heading, command names)] in the order the help shows them."""
        return [("Commands", self.list_commands(ctx))]

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        sections = []
        for heading, names in self.command_sections(ctx):
            rows = [(n, c) for n in names if (c := self.get_command(ctx, n)) is not None and not c.hidden]
            if rows:
                sections.append((heading, rows))
        if not sections:
            return
        width = max(len(n) for _, rows in sections for n, _ in rows)
        limit = formatter.width - 6 - width
        for heading, rows in sections:
            with formatter.section(heading):
                formatter.write_dl([(n, c.get_short_help_str(limit)) for n, c in rows])


class TopGroup(Group):
    """The top level: the commands, then the losses by family."""

    def command_sections(self, ctx: Any) -> list[tuple[str, list[str]]]:
        from ..core.call import COMMANDS
        from ..losses import families

        present = set(self.list_commands(ctx))
        sections = [("Commands", [c for c in ("help", *COMMANDS) if c in present])]
        for title, names in families():
            sections.append((f"Losses: {title}", [n for n in names if n in present]))
        return sections


def register(app: Any) -> None:
    """``lossctl help [NAME ...]``: the help of a command or loss (``lossctl help ce``, ``lossctl help gradcheck ce``)."""

    @app.command("help", cls=Command, short_help="Show the help of a command or a loss.",
                 epilog=examples("lossctl help ce", "lossctl help check", "lossctl help gradcheck ce"))
    def help_command(ctx: typer.Context,
                     names: list[str] | None = typer.Argument(None, metavar="[NAME]...",
                                                              help="A command or loss (and a loss of record/gradcheck).")) -> None:
        """Show the help of a command or a loss: 'lossctl help ce' is 'lossctl ce --help'."""
        from ..errors import UsageError

        parent = ctx.parent
        assert parent is not None
        command, here = parent.command, parent
        for name in names or []:
            sub = command.get_command(here, name) if hasattr(command, "get_command") else None
            if sub is None:
                raise UsageError(f"help: no command or loss '{name}' under '{here.command_path}'; "
                                 f"'{here.command_path} --help' lists them")
            here = sub.make_context(name, [], parent=here, resilient_parsing=True)
            command = sub
        typer.echo(command.get_help(here))
