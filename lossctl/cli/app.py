"""The Typer app and the error boundary: ``main(argv) -> exit code``, never a traceback."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings

from ..errors import ExitCode, LossctlError

# The Typer app is built on first use (``build_app()``, or ``lossctl.cli.app.app``): importing
# typer and synthesising every loss command costs more than the rest of a small call, and
# ``lossctl LOSS --opt value ...`` does not need it (lossctl.cli.argv_parser parses that directly).
_APP = None


def build_app():
    """The Typer application with every command (built once)."""
    global _APP
    if _APP is not None:
        return _APP
    import typer

    from ..core.call import COMMANDS_AFTER_LOSSES, COMMANDS_BEFORE_LOSSES
    from .help import HELP_OPTIONS, TopGroup, examples

    app = typer.Typer(
        name="lossctl",
        cls=TopGroup,
        help="Compute, explain and verify loss values exactly as PyTorch does.\n\n"
        "lossctl LOSS [OPTIONS] computes one loss ('lossctl help LOSS' for its options); "
        "the commands below check suites, gradients and dumps.",
        epilog=examples(
            "lossctl ce --logits '[[10,0,-10],[8,8,8]]' --target '[0,2]'",
            "lossctl ce --logits examples/triage/batch_logits.npy --target examples/triage/batch_target.npy --top 3 --hist",
            "lossctl check examples/seeds.yaml",
        ),
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": HELP_OPTIONS},
    )

    @app.callback()
    def top(version: bool = typer.Option(False, "--version", "-V", is_eager=True, help="Show the version (and the kernels in use) and exit.",
                                         callback=_show_version),
            config: str | None = typer.Option(None, "--config", metavar="FILE",
                                              help="Take the defaults from FILE (a lossctl.toml, or a pyproject.toml with "
                                                   "[tool.lossctl]) instead of the one found from the current folder up; "
                                                   "allowed anywhere on the line."),
            isolated: bool = typer.Option(False, "--isolated", help="Ignore every configuration file (allowed anywhere "
                                                                    "on the line).")) -> None:
        pass  # --config and --isolated are read (and removed) before parsing: lossctl.cli.config.take_options

    _register_commands(app, ("help",))
    _register_commands(app, COMMANDS_BEFORE_LOSSES)
    _register_losses(app)
    _register_commands(app, COMMANDS_AFTER_LOSSES)
    _APP = app
    return app


def version_text() -> str:
    """What ``lossctl --version`` prints: the version and the kernels in use."""
    from .. import __version__
    from ..core.kernels import describe

    return f"lossctl {__version__}\nkernels: {describe()}\n"


def _show_version(value: bool) -> None:
    if value:
        import typer

        sys.stdout.write(version_text())
        raise typer.Exit(0)


def __getattr__(name: str):
    if name == "app":
        return build_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _register_losses(app) -> None:
    from ..losses import registry
    from .typer_commands import register

    register(app, registry().specs)


def _register_commands(app, names) -> None:
    """The commands ``names`` (of :data:`lossctl.core.call.COMMANDS`), each from ``lossctl/cli/<name>.py``."""
    import importlib

    for name in names:
        importlib.import_module(f".{name.replace('-', '_')}", __package__).register(app)


def main(argv: list[str] | None = None) -> int:
    """Run lossctl; map every failure to the contract's exit codes. Never raises."""
    from ..errors import key_spelling
    from .options import option_name

    args = sys.argv[1:] if argv is None else list(argv)
    try:
        with _input_warnings_on_stderr(), key_spelling(option_name):
            return _main(args)
    finally:
        from ..io.writers import remove_temporaries

        remove_temporaries()  # an interrupted or failed write leaves no .tmp/.part file


# The environment variable the completion scripts (``lossctl completion SHELL``) set when they ask
# lossctl for the completions of a partial command line.
COMPLETE_VAR = "_LOSSCTL_COMPLETE"


def _main(args: list[str]) -> int:
    if os.environ.get(COMPLETE_VAR):
        return _complete()
    try:
        from .argv_parser import parse_loss_call
        from .config import resolve, take_options

        args = take_options(args)  # --config FILE / --isolated, anywhere on the line
        parsed = parse_loss_call(args)  # a plain loss call: no Typer needed
        if parsed is not None:
            from .loss import run_loss

            spec, values = parsed
            return int(run_loss(spec, resolve(values)) or 0)
    except Exception as e:
        return _failure(e)
    except (BrokenPipeError, KeyboardInterrupt) as e:
        return _failure(e)
    if args in (["--version"], ["-V"]):
        sys.stdout.write(version_text())
        return int(ExitCode.OK)
    import typer

    if not args:  # the overview, on stdout; still a usage error (no command given)
        build_app()(args=["--help"], prog_name="lossctl", standalone_mode=False)
        return int(ExitCode.USAGE)
    try:
        rv = build_app()(args=args, prog_name="lossctl", standalone_mode=False)
        return int(rv or 0)
    except LossctlError as e:
        _error(str(e))
        return int(e.exit_code)
    except typer.Exit as e:
        return int(e.exit_code)
    except typer.Abort as e:
        if isinstance(e.__context__, KeyboardInterrupt):  # click turns Ctrl-C (and SIGTERM) into Abort
            return _failure(e.__context__)
        _error("aborted")
        return int(ExitCode.USAGE)
    except typer.TyperException as e:  # click usage errors: unknown option, bad value, missing command
        _error(_usage_message(e))
        return int(getattr(e, "exit_code", ExitCode.USAGE) or ExitCode.USAGE)
    except (BrokenPipeError, KeyboardInterrupt, Exception) as e:
        return _failure(e)


def _complete() -> int:
    """Answer a completion script: the words that can follow the partial command line it gives."""
    from typer.completion import completion_init

    completion_init()  # typer's bash/zsh/fish answers
    try:
        build_app()(args=[], prog_name="lossctl", complete_var=COMPLETE_VAR, standalone_mode=False)
    except SystemExit as e:  # click's completion ends with sys.exit
        return int(e.code or 0)
    except Exception:  # a completion never prints a traceback into the user's shell
        return 1
    return 0


def _failure(e: BaseException) -> int:
    """The exit code (and stderr line) for an exception that is not a click/Typer one."""
    if _SIGNALLED and not isinstance(e, KeyboardInterrupt):
        e = _SIGNALLED[0]  # an interrupt that surfaced as another error (an import that failed half-way)
    if isinstance(e, LossctlError):
        _error(str(e))
        return int(e.exit_code)
    if isinstance(e, BrokenPipeError):
        _silence_stdout()
        return int(ExitCode.OK)
    if isinstance(e, Terminated):
        _error("terminated")
        return 128 + 15
    if isinstance(e, KeyboardInterrupt):
        _error("interrupted")
        return 130
    # a bug in lossctl
    if os.environ.get("LOSSCTL_TRACEBACK"):
        import traceback

        traceback.print_exception(e)
    _error(f"internal error: {type(e).__name__}: {e} (set LOSSCTL_TRACEBACK=1 for the traceback)")
    return int(ExitCode.INTERNAL)


@contextlib.contextmanager
def _input_warnings_on_stderr():
    """Show every :class:`~lossctl.errors.InputWarning` as one ``warning: ...`` line on stderr
    (never on stdout, never as Python's two-line warning format, every time it happens)."""
    from ..errors import InputWarning

    with warnings.catch_warnings():
        warnings.simplefilter("always", InputWarning)
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, InputWarning):
                try:
                    sys.stderr.write(f"warning: {message}\n")
                except (OSError, ValueError):
                    pass
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


def _unknown_option_message(msg: str, ctx) -> str | None:
    """``No such option: --margin`` on a loss command: name the loss's own parameters instead
    of click's spelling guesses (which suggest unrelated options)."""
    import re

    m = re.match(r"No such option: (\S+)", msg)
    if not m or ctx is None or ctx.command is None:
        return None
    option = m.group(1)
    from ..losses import registry

    spec = registry().find(ctx.info_name or "")
    if spec is None:
        return None
    from difflib import get_close_matches

    from .options import option_name

    own = {o[2:]: o for p in ctx.command.params if not getattr(p, "hidden", False) for o in p.opts if o.startswith("--")}
    close = get_close_matches(option.lstrip("-"), list(own), n=1, cutoff=0.75)
    takers = [s.name for s in registry().specs if option in {option_name(p.name) for p in s.params}]
    if takers:
        params = ", ".join(option_name(p.name) for p in spec.params) or "none"
        hint = (f" ({option} is a parameter of {', '.join(takers[:3])}{', ...' if len(takers) > 3 else ''}; "
                f"{spec.name} takes: {params})")
    elif close:
        hint = f" (did you mean {own[close[0]]}?)"
    else:
        hint = ""
    return f"{ctx.command_path}: No such option: {option}{hint}. Run '{ctx.command_path} --help' for its options."


def _usage_message(e: Exception) -> str:
    msg = e.format_message() if hasattr(e, "format_message") else str(e)
    ctx = getattr(e, "ctx", None)
    if "No such command" in msg:
        from difflib import get_close_matches

        from ..core.call import COMMANDS
        from ..losses import registry

        name = msg.split("'")[1] if "'" in msg else ""
        return unknown_name_message(name, registry().names_and_aliases(), list(COMMANDS) + ["help"])
    better = _unknown_option_message(msg, ctx)
    if better:
        return better
    prefix = f"{ctx.command_path}: " if ctx is not None and ctx.command_path and ctx.command_path != "lossctl" else ""
    return f"{prefix}{msg}"


def unknown_name_message(name: str, losses: list[str], commands: list[str]) -> str:
    """``lossctl NAME`` where NAME is neither a command nor a loss: the likely meant name."""
    if name == "version":
        return "'version' is not a command; the version is 'lossctl --version'"
    choices = commands + losses
    if name.lower() in choices:  # lossctl CE
        close = [name.lower()]
    else:
        from difflib import get_close_matches

        close = get_close_matches(name.lower(), choices, n=1, cutoff=0.6)
    if close and close[0] in losses:
        return f"unknown loss '{name}'; did you mean '{close[0]}'? Run 'lossctl list' for all losses."
    if close:
        return f"unknown command '{name}'; did you mean '{close[0]}'? Run 'lossctl --help' for the commands."
    return (f"'{name}' is neither a command nor a loss. "
            "Run 'lossctl --help' for the commands and 'lossctl list' for the losses.")


def _error(msg: str) -> None:
    try:
        sys.stderr.write(f"error: {msg}\n")
        sys.stderr.flush()
    except Exception:  # stderr closed or full: the exit code still tells
        pass


def _silence_stdout() -> None:
    # Python flushes stdout at exit; point it at devnull so a closed pipe stays quiet.
    _silence(sys.stdout)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is (so that every ``finally`` runs and temporary files go)."""


_SIGNALLED: list[KeyboardInterrupt] = []  # the interrupt received, if any


def _on_sigint(signum, frame) -> None:
    _SIGNALLED.append(KeyboardInterrupt())
    raise _SIGNALLED[-1]


def _on_sigterm(signum, frame) -> None:
    _SIGNALLED.append(Terminated())
    raise _SIGNALLED[-1]


def _ignore_signals() -> None:
    """The call is over (its files committed or removed, its exit code chosen): a signal now
    changes nothing, rather than ending the process by the signal with no word."""
    import signal

    with contextlib.suppress(ValueError, OSError, AttributeError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _install_signal_handlers() -> None:
    import signal

    with contextlib.suppress(ValueError, OSError, AttributeError):  # not the main thread; no SIGTERM here
        signal.signal(signal.SIGINT, _on_sigint)
        signal.signal(signal.SIGTERM, _on_sigterm)


def _standard_streams() -> None:
    """Standard streams that can be written whatever the caller did with them: a closed
    descriptor 0, 1 or 2 is opened on the null device (so that no file lossctl opens takes its
    number), and standard output and error report a full disk as an exit-3 error and a closed
    pipe by going quiet (the exit code still says what was computed)."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.open(os.devnull, os.O_RDWR)  # takes the lowest free number: this one
    if sys.stdin is None:
        sys.stdin = open(0, encoding="utf-8", errors="replace", closefd=False)
    for name, fd in (("stdout", 1), ("stderr", 2)):
        stream = getattr(sys, name)
        if stream is None:
            stream = open(fd, "w", buffering=1 if fd == 2 else -1, encoding="utf-8", errors="backslashreplace",
                          closefd=False)
        setattr(sys, name, _GuardedStream(stream, name))


class _GuardedStream:
    """A text stream whose write errors are lossctl errors: a closed pipe (``| head -1``)
    silences the stream for the rest of the run; any other error (``/dev/full``) is an
    :class:`~lossctl.errors.InputError` naming the stream (exit 3)."""

    def __init__(self, stream, name: str):
        self._stream = stream
        self._name = "standard output" if name == "stdout" else "standard error"
        self._quiet = False

    def __getattr__(self, attr):
        return getattr(self._stream, attr)

    def _guard(self, op, *args):
        if self._quiet:
            return len(args[0]) if args else None
        try:
            return op(*args)
        except BrokenPipeError:
            self._quiet = True
            _silence(self._stream)
            return len(args[0]) if args else None
        except OSError as e:
            from ..io.writers import write_error

            self._quiet = True  # the error line must not fail the same way
            _silence(self._stream)
            raise write_error(self._name, e) from None

    def write(self, text: str) -> int:
        return self._guard(self._stream.write, text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._guard(self._stream.flush)


def _silence(stream) -> None:
    """Point ``stream``'s descriptor at the null device, dropping what is buffered."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


def entry() -> None:
    """Console-script entry point: the signal handlers first, then the program; every outcome,
    an interrupt while Python is still importing included, is an exit code and a line on stderr."""
    try:
        _install_signal_handlers()
        _standard_streams()
        code = main()
        sys.stdout.flush()
    except LossctlError as e:  # standard output could not be written
        _error(str(e))
        code = int(e.exit_code)
    except (KeyboardInterrupt, Exception) as e:
        code = _failure(e)
    try:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        _ignore_signals()
    except KeyboardInterrupt as e:  # a signal just as the call ended
        code = _failure(e)
        _ignore_signals()
    if _SIGNALLED:
        # An interrupt inside an exec() of an import (dataclasses build methods so) leaves CPython
        # set to end the process by the signal itself (exit -2) after this one is handled; a
        # finished exec clears that, so the exit code stays the one chosen here.
        exec("pass")
    sys.exit(code)
