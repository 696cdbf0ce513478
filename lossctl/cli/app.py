"""The Typer app and the error boundary: ``main(argv) -> exit code``, never a traceback."""

from __future__ import annotations

import os
import sys

import typer

from ..errors import ExitCode, LossctlError

app = typer.Typer(
    name="lossctl",
    help="Compute, explain and verify loss values exactly as PyTorch does.\n\n"
    "Run 'lossctl list' for the losses and 'lossctl LOSS --help' for one loss's options.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


@app.command("list")
def list_losses(
    format: str = typer.Option("table", "--format", "-f", help="table, json, plain or markdown."),
    json_: bool = typer.Option(False, "--json", help="Short for --format json."),
) -> None:
    """List the registered losses, their aliases, inputs and parameters."""
    from .listing import render_list

    render_list("json" if json_ else format)


def _register_losses() -> None:
    from ..api import registry
    from .loss_commands import register

    register(app, registry().specs)


_register_losses()


def _register_commands() -> None:
    from .commands import register

    register(app)


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Run lossctl; map every failure to the contract's exit codes. Never raises."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        rv = app(args=args, prog_name="lossctl", standalone_mode=False)
        return int(rv or 0)
    except LossctlError as e:
        _error(str(e))
        return int(e.exit_code)
    except typer.Exit as e:
        return int(e.exit_code)
    except typer.Abort:
        _error("aborted")
        return int(ExitCode.USAGE)
    except typer.TyperException as e:  # click usage errors: unknown option, bad value, missing command
        _error(_usage_message(e))
        return int(getattr(e, "exit_code", ExitCode.USAGE) or ExitCode.USAGE)
    except BrokenPipeError:
        _silence_stdout()
        return int(ExitCode.OK)
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except Exception as e:  # a bug in lossctl
        if os.environ.get("LOSSCTL_TRACEBACK"):
            import traceback

            traceback.print_exc()
        _error(f"internal error: {type(e).__name__}: {e} (set LOSSCTL_TRACEBACK=1 for the traceback)")
        return int(ExitCode.INTERNAL)


def _usage_message(e: Exception) -> str:
    msg = e.format_message() if hasattr(e, "format_message") else str(e)
    ctx = getattr(e, "ctx", None)
    if "No such command" in msg:
        from difflib import get_close_matches

        from ..api import registry

        name = msg.split("'")[1] if "'" in msg else ""
        choices = list(registry()._by_name) + ["list", "check", "record", "gradcheck"]
        close = get_close_matches(name, choices, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"unknown loss '{name}'{hint} Run 'lossctl list' for all losses."
    prefix = f"{ctx.command_path}: " if ctx is not None and ctx.command_path and ctx.command_path != "lossctl" else ""
    return f"{prefix}{msg}"


def _error(msg: str) -> None:
    try:
        sys.stderr.write(f"error: {msg}\n")
        sys.stderr.flush()
    except (BrokenPipeError, OSError):
        pass


def _silence_stdout() -> None:
    # Python flushes stdout at exit; point it at devnull so a closed pipe stays quiet.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def entry() -> None:
    """Console-script entry point."""
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    sys.exit(code)
