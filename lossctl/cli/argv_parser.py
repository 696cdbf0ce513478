"""The fast path: ``lossctl LOSS --opt value ...`` parsed without building the Typer app.

Importing typer (and what it pulls in) and synthesising a command for every loss
costs several times what a small call itself does. A loss call has a fixed,
simple grammar, the options of :func:`lossctl.cli.options.spec_options`, so
this module reads it directly and hands :func:`lossctl.cli.loss.run_loss` the same
option dictionary Typer would. Anything it does not fully understand — ``--help``,
an unknown or misspelt option, a value that does not convert, a missing value,
``--``, short options glued to their value, a positional argument, a command that
is not a loss — returns None, and the Typer app handles the call, so every error
message and every edge case stays Typer's (click's) own.
"""

from __future__ import annotations

from typing import Any


def parse_loss_call(args: list[str]):
    """``(spec, options)`` for a plain loss call, or None to let the Typer app handle ``args``."""
    if not args or args[0].startswith("-"):
        return None
    from ..losses import find

    spec = find(args[0])  # loads the one family that declares it
    if spec is None:
        return None
    from .options import spec_options

    opts = spec_options(spec)
    values = _parse(opts, args[1:])
    if values is None:
        return None
    return spec, values


def _parse(opts, argv: list[str]) -> dict[str, Any] | None:
    takes_value: dict[str, Any] = {}
    flags: dict[str, tuple[Any, bool]] = {}
    for o in opts:
        for decl in o.decls:
            if o.type is bool:
                on, _, off = decl.partition("/")
                flags[on] = (o, True)
                if off:
                    flags[off] = (o, False)
            else:
                takes_value[decl] = o
    values = {o.name: o.default for o in opts}
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in flags:
            opt, value = flags[token]
            values[opt.name] = value
            i += 1
            continue
        name, eq, text = token.partition("=")
        if eq and name.startswith("--") and name in takes_value:
            opt = takes_value[name]
            i += 1
        elif token in takes_value and i + 1 < len(argv):
            opt, text = takes_value[token], argv[i + 1]
            i += 2
        else:
            return None
        converted = _convert(opt.type, text)
        if converted is _BAD:
            return None
        values[opt.name] = converted
    return values


_BAD = object()


def _convert(kind: Any, text: str):
    """click's conversion of an option value: int(), float(), or the string itself."""
    target = kind
    args = getattr(kind, "__args__", None)
    if args:  # X | None
        target = next((a for a in args if a is not type(None)), str)
    try:
        if target is int:
            return int(text)
        if target is float:
            return float(text)
    except ValueError:
        return _BAD
    if target is str:
        return text
    return _BAD
