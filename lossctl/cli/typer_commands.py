"""The one factory that turns a LossSpec into a Typer command (and groups of them). No per-loss code lives here."""

from __future__ import annotations

import inspect
from typing import Annotated, Any, Callable

import typer
from typer.core import TyperGroup

from ..core.registry import LossSpec
from .options import Opt, spec_options, spell


def make_loss_command(spec: LossSpec, *, extra: tuple[Opt, ...] = (), omit: frozenset[str] | set[str] = frozenset(),
                      body: Callable[[LossSpec, dict[str, Any]], int] | None = None):
    """A function whose synthesized signature Typer reads as the command's options.

    ``extra`` options are added after the loss's own, ``omit`` names options to leave out,
    and ``body(spec, options) -> exit code`` replaces :func:`lossctl.cli.loss.run_loss`
    (``lossctl record`` and ``lossctl gradcheck`` are loss commands with another body).
    """
    opts = [o for o in spec_options(spec) if o.name not in omit] + list(extra)

    def command(**kwargs: Any) -> None:
        if body is None:
            from .loss import run_loss

            code = run_loss(spec, kwargs)
        else:
            code = body(spec, kwargs)
        if code:
            raise typer.Exit(code)

    params = [
        inspect.Parameter(
            o.name, inspect.Parameter.KEYWORD_ONLY, default=o.default,
            annotation=Annotated[o.type, typer.Option(*o.decls, help=o.help, rich_help_panel=o.panel, hidden=o.hidden, show_default=o.type is not bool or o.default)],
        )
        for o in opts
    ]
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__name__ = spec.name.replace("-", "_")
    command.__doc__ = spell(f"{spec.summary}\n\nMirrors {spec.mirrors}.  {spec.formula}" + (f"\n\n{spec.notes}" if spec.notes else ""))
    return command


def register(app: typer.Typer, specs) -> None:
    for spec in specs:
        fn = make_loss_command(spec)
        short = spec.summary.split(".")[0]
        app.command(spec.name, help=fn.__doc__, short_help=short)(fn)
        for alias in spec.aliases:
            app.command(alias, help=fn.__doc__, hidden=True)(fn)


# --------------------------------------------------------------------------- groups of loss commands


def loss_group(name: str, body, *, extra, omit, help: str, short_help: str) -> typer.Typer:
    """A group (``lossctl record``, ``lossctl gradcheck``) with one command per loss, running ``body``."""
    group_cls = type(f"{name.title()}Group", (LossGroup,), {"body": staticmethod(body), "extra": extra, "omit": omit})
    return typer.Typer(name=name, cls=group_cls, help=help, short_help=short_help, no_args_is_help=True,
                       add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)


class LossGroup(TyperGroup):
    """A group whose commands are the registered losses, each built only when it is invoked."""

    body: Any = None
    extra: tuple = ()
    omit: frozenset = frozenset()

    def list_commands(self, ctx) -> list[str]:
        from ..losses import registry
        from ..tokens import COMMAND_NAMES

        return registry().names() + list(COMMAND_NAMES)

    def get_command(self, ctx, cmd_name: str):
        from ..losses import registry
        from ..tokens import command_spec

        spec = registry().find(cmd_name) or command_spec(cmd_name)  # the losses, then lm and linear-ce
        if spec is None:
            return None
        fn = make_loss_command(spec, extra=self.extra, omit=self.omit, body=self.body)
        mini = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)
        mini.command(spec.name, help=fn.__doc__, short_help=spec.summary.split(".")[0])(fn)
        command = typer.main.get_command(mini)
        command.name = spec.name
        return command
