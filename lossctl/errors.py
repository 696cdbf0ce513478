"""Exit codes and the exceptions that map to them (CONTRACT §5).

Only the CLI turns these into exit codes and stderr lines; the library raises
them with a message that already names the input and the problem.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    CHECK_FAILED = 1
    USAGE = 2
    INPUT = 3
    INTERNAL = 4


class LossctlError(Exception):
    """Base class for every error a user can cause."""

    exit_code: ExitCode = ExitCode.INTERNAL


class UsageError(LossctlError):
    """Unknown loss or option, missing input, conflicting options (exit 2)."""

    exit_code = ExitCode.USAGE


class InputError(LossctlError):
    """Unreadable or malformed file, wrong shape, invalid values (exit 3)."""

    exit_code = ExitCode.INPUT


class InvalidInput(ValueError):
    """Raised by a loss's validator about one named input; ``prepare`` adds the origin.

    ``name`` is the input's key (``"target"``, ``"weight"``), ``message`` the
    problem in lower case, e.g. ``"class index 7 is out of range for 3 classes (row 12)"``.
    """

    def __init__(self, name: str, message: str):
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


class InputWarning(UserWarning):
    """Something PyTorch accepts but that is probably a mistake (NaN in an input, probabilities
    that do not sum to 1). The CLI prints ``warning: <message>`` on stderr; ``--strict`` turns it
    into an :class:`InputError` (exit 3). The message names the input like an error's does;
    ``problem`` is the message without what lossctl does about it (for ``--strict``)."""

    def __init__(self, message: str, problem: str | None = None):
        super().__init__(message)
        self.problem = problem or message
