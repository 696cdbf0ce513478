"""lossctl: compute, explain and verify loss values exactly as PyTorch does.

The public Python API:

* :func:`compute` (``compute({"loss": "ce", "logits": ..., "target": ...})``) -> :class:`Result`
* :func:`registry` (every loss's :class:`~lossctl.core.registry.LossSpec`) and :func:`registry_names`
* the errors: :class:`LossctlError` and its :class:`UsageError` / :class:`InputError`, whose
  :class:`ExitCode` the command line exits with

    >>> import lossctl
    >>> lossctl.compute({"loss": "ce", "logits": [[10, 0, -10], [8, 8, 8]], "target": [0, 2]}).loss
    0.5493288448141933
"""

from __future__ import annotations


def _stop_while_starting(signum, frame):
    import os

    os.write(2, b"error: interrupted\n" if signum == 2 else b"error: terminated\n")
    raise SystemExit(128 + signum)


def _guard_the_start() -> None:
    """The command line (``lossctl``, ``python -m lossctl``) interrupted while still importing
    ends at once with one line and exit 130 (143 for SIGTERM), never a traceback; the program's
    own handlers replace these first thing (lossctl.cli.app.entry). Nothing changes for a
    program that imports lossctl."""
    import os
    import sys

    import _signal  # the built-in module: importing `signal` (enums) would itself take a while

    argv0 = sys.argv[0] if sys.argv else ""
    if (argv0 == "-m" or os.path.basename(argv0) == "lossctl") and \
            _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
        try:
            _signal.signal(_signal.SIGINT, _stop_while_starting)
            _signal.signal(_signal.SIGTERM, _stop_while_starting)
        except (ValueError, OSError):  # not the main thread
            pass


_guard_the_start()

from typing import TYPE_CHECKING  # noqa: E402  (after the guard: nothing is imported before it)

if TYPE_CHECKING:  # the types a checker sees; at run time they are imported on first use
    from .public import Result, compute, registry, registry_names

from .errors import ExitCode, InputError, LossctlError, UsageError

__version__ = "0.1.0"

_API = ("compute", "registry", "registry_names", "Result")


def __getattr__(name: str):
    # The API (and numpy) is imported on first use: the command line installs its signal
    # handlers before the heavy imports, and ``import lossctl`` stays cheap.
    if name in _API:
        from . import public

        return getattr(public, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

__all__ = ["compute", "registry", "registry_names", "Result", "ExitCode", "LossctlError", "UsageError", "InputError", "__version__"]
