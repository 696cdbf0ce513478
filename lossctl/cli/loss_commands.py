"""The one factory that turns a LossSpec into a Typer command. No per-loss code lives here."""

from __future__ import annotations

import dataclasses
import inspect
from typing import TYPE_CHECKING, Annotated, Any, Callable

from ..registry import LossSpec, Param
from .options import COMMON_OPTIONS, Opt, input_option

if TYPE_CHECKING:
    import typer

_PARAM_TYPES = {"float": float, "int": int, "bool": bool, "array": str | None, "choice": str}


def spec_options(spec: LossSpec) -> list[Opt]:
    """Every option of ``lossctl NAME``: inputs, the loss's parameters, then the shared ones."""
    opts = [input_option(k, hidden=k not in spec.kinds) for k in spec.prediction_kinds]
    opts += [input_option(k) for k in spec.extra_inputs]
    if spec.target != "none":
        opts.append(input_option("target"))
    opts += [input_option(k) for k in spec.aux_inputs]
    opts = [_with_help(o, spec.input_help.get(o.name)) for o in opts]
    opts.append(Opt("reduction", ("--reduction", "-r"), str, "mean", f"Reduction: {', '.join(spec.reductions)}.", "Parameters"))
    if spec.class_axis:
        opts.append(Opt("dim", ("--dim",), int | None, None, "The class dimension (default 1, or 0 for a 1-D input), as PyTorch.", "Parameters"))
    opts += [_param_option(p) for p in (*spec.params, *spec.extra_params)]
    opts += list(COMMON_OPTIONS)
    return opts


def _with_help(opt: Opt, text: str | None) -> Opt:
    """An input option with the loss's own help text (``LossSpec.input_help``), source syntax kept."""
    if not text:
        return opt
    from .options import SOURCE_HELP

    return dataclasses.replace(opt, help=f"{text} {SOURCE_HELP}")


def _param_option(p: Param) -> Opt:
    if p.kind == "bool":
        decls = (p.option if not p.default else f"{p.option}/--no-{p.option[2:]}",)
    else:
        decls = (p.option,)
    default = p.default if p.kind != "array" else None
    help_text = p.help  # Typer shows "[default: ...]" itself
    if p.kind == "array":
        help_text += " An array source, as for inputs."
    return Opt(p.name, decls, _PARAM_TYPES[p.kind], default, help_text, "Parameters")


def make_loss_command(spec: LossSpec, *, extra: tuple[Opt, ...] = (), omit: frozenset[str] | set[str] = frozenset(),
                      body: Callable[[LossSpec, dict[str, Any]], int] | None = None):
    """A function whose synthesized signature Typer reads as the command's options.

    ``extra`` options are added after the loss's own, ``omit`` names options to leave out,
    and ``body(spec, options) -> exit code`` replaces :func:`lossctl.cli.run.run_loss`
    (``lossctl record`` and ``lossctl gradcheck`` are loss commands with another body).
    """
    import typer  # here, not at import: the fast path (lossctl.cli.fast) uses spec_options without Typer

    opts = [o for o in spec_options(spec) if o.name not in omit] + list(extra)

    def command(**kwargs: Any) -> None:
        if body is None:
            from .run import run_loss

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
    command.__doc__ = f"{spec.summary}\n\nMirrors {spec.mirrors}.  {spec.formula}" + (f"\n\n{spec.notes}" if spec.notes else "")
    return command


def register(app: typer.Typer, specs) -> None:
    for spec in specs:
        fn = make_loss_command(spec)
        short = spec.summary.split(".")[0]
        app.command(spec.name, help=fn.__doc__, short_help=short)(fn)
        for alias in spec.aliases:
            app.command(alias, help=fn.__doc__, hidden=True)(fn)
