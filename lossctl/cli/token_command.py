"""What ``lossctl lm`` and ``lossctl linear-ce`` share: their options (generated from the
command's key declaration in :mod:`lossctl.tokens` and the shared keys of
:mod:`lossctl.core.call`, as every loss command's are), reading the call, ``--expect*`` and ``-o``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import typer

from ..errors import UsageError


def register_command(app: typer.Typer, name: str, body: Callable[[Any, dict[str, Any]], int], *,
                     help: str, short_help: str, epilog: str) -> None:
    """``lossctl NAME``: options from the command's spec, ``body(spec, options) -> exit code``."""
    from ..tokens import command_spec
    from .help import Command
    from .typer_commands import make_loss_command

    fn = make_loss_command(command_spec(name), body=body)
    app.command(name, help=help, short_help=short_help, cls=Command, epilog=epilog)(fn)


def read_token_call(spec, opts: dict[str, Any]):
    """The call (sources read lazily: memory maps, raw bfloat16) and the reader; checks that
    the required inputs are there, naming them as the command line does."""
    from .loss import output_format, read_call
    from .options import option_name

    fmt = output_format(opts)
    required = list(spec.kinds) + list(spec.extra_inputs) + (["target"] if spec.target != "none" else []) \
        + list(spec.aux_inputs)
    missing = [k for k in required if opts.get(k) is None]
    if missing:
        def spelt(k: str) -> str:
            aliases = spec.input_aliases.get(k, ())
            return option_name(k) + (f" (or {' / '.join(option_name(a) for a in aliases)})" if aliases else "")

        raise UsageError(f"{spec.name} needs {', '.join(spelt(k) for k in required[:-1])} and {spelt(required[-1])}"
                         f"; missing {spelt(missing[0])}")
    from ..core.call import DTYPES

    for key, allowed in (("reduction", spec.reductions), ("dtype", DTYPES)):
        if opts.get(key) is not None and opts[key] not in allowed:
            raise UsageError(f"{option_name(key)}: {spec.name} takes one of {', '.join(allowed)}; got {opts[key]!r}")
    call, reader = read_call(spec, opts)
    call.pop("loss", None)
    return fmt, call, reader


def check(result, reader, opts: dict[str, Any], grad_name: str):
    """The ``--expect*`` report for ``result`` (an object with loss, per_sample, grad), or None."""
    if opts["expect"] is None and opts["expect_per_sample"] is None and opts["expect_grad"] is None:
        return None
    from ..core.expectations import check_result
    from .loss import parse_expect

    def read(key: str):
        return reader.read(key, opts[key]) if opts[key] is not None else None

    return check_result(
        result,
        expect=parse_expect(opts["expect"], reader) if opts["expect"] is not None else None,
        expect_per_sample=read("expect_per_sample"),
        expect_grad={grad_name: read("expect_grad")} if opts["expect_grad"] is not None else None,
        rtol=opts["rtol"], atol=opts["atol"])


def output_stream(opts: dict[str, Any], reader, grad: bool | None = None):
    """The ``-o`` destination (checked: never an input), or None; ``grad``: whether the gradient
    goes into it (default: with ``--grad``)."""
    if opts.get("output") is None:
        return None
    from ..io.outstream import OutputStream
    from ..io.writers import check_output_path

    check_output_path(opts["output"], reader.paths, opts["force"])  # a string: '' is refused, not taken as '.'
    return OutputStream(Path(opts["output"]), grad=opts["grad"] if grad is None else grad)
