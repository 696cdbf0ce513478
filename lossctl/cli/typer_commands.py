"""The one factory that turns a LossSpec into a Typer command (and groups of them). No per-loss code lives here."""

from __future__ import annotations

import inspect
from typing import Annotated, Any, Callable

import typer

from ..core.registry import LossSpec
from .help import Command, Group, examples
from .options import Opt, option_name, spec_options, spell


def make_loss_command(spec: LossSpec, *, extra: tuple[Opt, ...] = (), omit: frozenset[str] | set[str] = frozenset(),
                      body: Callable[[LossSpec, dict[str, Any]], int] | None = None):
    """A function whose synthesized signature Typer reads as the command's options.

    ``extra`` options are added after the loss's own, ``omit`` names options to leave out,
    and ``body(spec, options) -> exit code`` replaces :func:`lossctl.cli.loss.run_loss`
    (``lossctl record`` and ``lossctl gradcheck`` are loss commands with another body).
    """
    opts = [o for o in spec_options(spec) if o.name not in omit] + list(extra)

    def command(**kwargs: Any) -> None:
        from .config import resolve

        kwargs = resolve(kwargs)
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
            annotation=Annotated[o.type, typer.Option(*o.decls, help=o.help, rich_help_panel=o.panel, hidden=o.hidden,
                                                      show_default=o.shown_default if o.shown_default is not None
                                                      else (o.type is not bool or o.default),
                                                      autocompletion=_completer(o.choices) if o.choices else None)],
        )
        for o in opts
    ]
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__name__ = spec.name.replace("-", "_")
    command.__doc__ = spell(f"{spec.summary}\n\nMirrors {spec.mirrors}.  {spec.formula}" + (f"\n\n{spec.notes}" if spec.notes else ""))
    return command


def _completer(choices: tuple[str, ...]) -> Callable[[str], list[str]]:
    """Shell completion of an option's value: the choices that start with what is typed."""
    return lambda incomplete: [c for c in choices if c.startswith(incomplete)]


def loss_examples(spec: LossSpec, command: str = "") -> str:
    """Example command lines of a loss: a plain call, per-sample values as JSON, a checked call."""
    words = ["lossctl"] + ([command] if command else []) + [spec.name]
    kind = next(iter(spec.kinds))
    inputs = [kind, *spec.extra_inputs] + (["target"] if spec.target != "none" else []) + list(spec.aux_inputs)
    call = " ".join(words + [f"{option_name(k)} {k.replace('_', '-')}.npy" for k in inputs])
    if command == "gradcheck":
        return examples(call, f"{call} --tol 1e-8", f"{call} --json")
    if command == "compare":
        return examples(call, f"{call} --per-sample", f"{call} --json")
    if command == "record":
        return examples(f"{call} --to suite.yaml", f"{call} --to suite.yaml --name first-case")
    none = " --reduction none" if "none" in spec.reductions else ""
    return examples(call, f"{call}{none} --json", f"{call} --expect 0.5 --rtol 1e-6 --explain")


def register(app: typer.Typer, specs) -> None:
    for spec in specs:
        fn = make_loss_command(spec)
        short = spec.summary.split(".")[0]
        app.command(spec.name, help=fn.__doc__, short_help=short, cls=Command, epilog=loss_examples(spec))(fn)
        for alias in spec.aliases:
            app.command(alias, help=fn.__doc__, hidden=True, cls=Command, epilog=loss_examples(spec))(fn)


# --------------------------------------------------------------------------- groups of loss commands


def loss_group(name: str, body, *, extra, omit, help: str, short_help: str, epilog: str) -> typer.Typer:
    """A group (``lossctl record``, ``lossctl gradcheck``) with one command per loss, running ``body``."""
    group_cls = type(f"{name.title()}Group", (LossGroup,), {"body": staticmethod(body), "extra": extra, "omit": omit})
    return typer.Typer(name=name, cls=group_cls, help=help, short_help=short_help, epilog=epilog,
                       add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)


class LossGroup(Group):
    """A group whose commands are the registered losses, each built only when it is invoked."""

    body: Any = None
    extra: tuple = ()
    omit: frozenset = frozenset()

    def list_commands(self, ctx) -> list[str]:
        from ..losses import registry
        from ..tokens import COMMAND_NAMES

        return registry().names() + list(COMMAND_NAMES)

    def command_sections(self, ctx) -> list[tuple[str, list[str]]]:
        from ..losses import families

        from ..tokens import COMMAND_NAMES

        return [(f"Losses: {title}", names) for title, names in families()] + [("Token batches", list(COMMAND_NAMES))]

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        if not args and not ctx.resilient_parsing:  # a short usage, not the whole help as an error
            from ..errors import UsageError

            raise UsageError(f"{ctx.command_path}: give a loss: {ctx.command_path} LOSS [OPTIONS] "
                             f"(e.g. {ctx.command_path} ce --logits logits.npy --target target.npy); "
                             f"'{ctx.command_path} --help' lists the losses")
        return super().parse_args(ctx, args)

    def get_command(self, ctx, cmd_name: str):
        from ..losses import registry
        from ..tokens import command_spec

        spec = registry().find(cmd_name) or command_spec(cmd_name)  # the losses, then lm and linear-ce
        if spec is None:
            return None
        fn = make_loss_command(spec, extra=self.extra, omit=self.omit, body=self.body)
        mini = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)
        mini.command(spec.name, help=fn.__doc__, short_help=spec.summary.split(".")[0], cls=Command,
                     epilog=loss_examples(spec, self.name or ""))(fn)
        command = typer.main.get_command(mini)
        command.name = spec.name
        return command
