"""Exit codes, the exceptions that map to them, and how a message names a key.

Only the CLI turns these into exit codes and stderr lines; the library raises
them with a message that already names the input and the problem. The library
names a key of a call with :func:`ref` (``ref("reduction")``); ``str(error)``
shows it as the key (``reduction``), or as the command line's option (``--reduction``)
while the CLI runs (it sets the spelling with :func:`key_spelling`).
"""

from __future__ import annotations

import contextlib
import enum
import re
from typing import Callable, Iterator

_REF = re.compile("\u2039([A-Za-z0-9_.]+)\u203a")


def ref(key: str) -> str:
    """A reference to the call key ``key`` inside a message or help text."""
    return f"\u2039{key}\u203a"


_spelling: Callable[[str], str] | None = None


@contextlib.contextmanager
def key_spelling(spell: Callable[[str], str]) -> Iterator[None]:
    """Within the block, messages spell key references with ``spell`` (the CLI: ``--option``)."""
    global _spelling
    before, _spelling = _spelling, spell
    try:
        yield
    finally:
        _spelling = before


def spell_refs(text: str, spell: Callable[[str], str] | None = None) -> str:
    """``text`` with each :func:`ref` spelt by ``spell(key)`` (default: the current spelling, else the key)."""
    if "\u2039" not in text:
        return text
    how = spell or _spelling
    return _REF.sub(lambda m: how(m.group(1)) if how is not None else m.group(1), text)


class ExitCode(enum.IntEnum):
    """The exit codes of the command line (an error's ``exit_code`` is one of them)."""

    OK = 0
    CHECK_FAILED = 1
    USAGE = 2
    INPUT = 3
    INTERNAL = 4
    NO_CASES = 5  # lossctl check -k: no case of the suite matches (as pytest's "no tests collected")


class LossctlError(Exception):
    """Base class for every error a user can cause."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __str__(self) -> str:
        return spell_refs(super().__str__())

    @property
    def raw(self) -> str:
        """The message with its key references (:func:`ref`) unspelt, for the CLI to spell."""
        return super().__str__()


class UsageError(LossctlError):
    """Unknown loss or option, missing input, conflicting options (exit 2)."""

    exit_code = ExitCode.USAGE


class NoCasesSelected(UsageError):
    """``lossctl check -k PATTERN`` selects none of the suite's cases (exit 5)."""

    exit_code = ExitCode.NO_CASES


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

    def __str__(self) -> str:
        return spell_refs(super().__str__())


class InputWarning(UserWarning):
    """Something PyTorch accepts but that is probably a mistake (NaN in an input, probabilities
    that do not sum to 1). The CLI prints ``warning: <message>`` on stderr; ``--strict`` turns it
    into an :class:`InputError` (exit 3). The message names the input like an error's does;
    ``problem`` is the message without what lossctl does about it (for ``--strict``)."""

    def __init__(self, message: str, problem: str | None = None):
        super().__init__(message)
        self.problem = problem or message

    def __str__(self) -> str:
        return spell_refs(super().__str__())


class ReductionWarning(InputWarning):
    """A reduction that is allowed but rarely what is meant (``kl`` with 'mean'): shown like an
    :class:`InputWarning`, never refused (it is not about the inputs)."""
