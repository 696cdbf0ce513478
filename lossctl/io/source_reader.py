"""One reader of sources for a call or a suite: each source parsed once, its origin kept.

A source is a file (``x.npy``, ``x.npz:KEY``), ``-`` for standard input, or an inline
literal (:func:`lossctl.io.sources.parse_source`). The loss commands read one call's sources
through a :class:`SourceReader`; a check suite reads all its cases' through one with
``cache=True`` (cases often share data files: each is read once and every case gets a copy).
Either way the reader remembers each input's origin (``--logits x.csv``, which prefixes every
message about it) and every path it read, which no output may overwrite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import InputError, UsageError, ref
from .sources import Source, parse_source


class SourceReader:
    """Reads sources; ``name(key)`` spells a key in origins (default :func:`~lossctl.errors.ref`).

    ``base``: the directory relative paths start from (a suite's folder); ``stdin_refusal``:
    the reason standard input may not be read (a suite), else it may be read by one key;
    ``cache``: keep each array read and hand out copies.
    """

    def __init__(self, base: Path | None = None, *, stdin_format: str | None = None, stdin_refusal: str = "",
                 cache: bool = False, name: Callable[[str], str] = ref):
        self.base = base
        self.stdin_format = stdin_format
        self.stdin_refusal = stdin_refusal
        self.cache = cache
        self.name = name
        self.origins: dict[str, str] = {}
        self.paths: list[Path] = []
        self._stdin_used_by: str | None = None
        self._arrays: dict[tuple, Any] = {}

    def locate(self, key: str, text: str, origin: str | None = None) -> tuple[Source, str]:
        """The parsed source of ``key`` and its origin, recorded (standard input only once)."""
        if origin is None:
            shown = text if text.isprintable() else printable(text)  # the message stays one line
            origin = f"{self.name(key)} {shown}" if len(shown) <= 60 else f"{self.name(key)} {shown[:57]}..."
        self.origins[key] = origin
        source = parse_source(text, base=self.base)
        if source.kind == "stdin":
            if self.stdin_refusal:
                raise InputError(f"{origin}: {self.stdin_refusal}")
            if self._stdin_used_by is not None:
                raise UsageError(f"{self.name(key)}: standard input is already read by {self._stdin_used_by}")
            self._stdin_used_by = self.name(key)
        if source.path is not None and source.path not in self.paths:
            self.paths.append(source.path)
        return source, origin

    def read(self, key: str, text: str, origin: str | None = None, *, lazy: bool = True):
        """One array (``lazy``: a bfloat16/float8 tensor may stay encoded until it is used)."""
        from .readers import read_array

        source, origin = self.locate(key, text, origin)
        if not self.cache:
            return read_array(source, origin, stdin_format=self.stdin_format, lazy=lazy)
        found = self._cached(("array",) + _identity(source), lambda: read_array(source, origin))
        return np.array(found, copy=True)

    def read_named(self, key: str, text: str, origin: str | None = None) -> dict[str, np.ndarray]:
        """Several named arrays from one source (:func:`lossctl.io.readers.read_named_arrays`)."""
        from .readers import read_named_arrays

        source, origin = self.locate(key, text, origin)
        if not self.cache:
            return read_named_arrays(source, origin, stdin_format=self.stdin_format)
        found = self._cached(("named",) + _identity(source), lambda: read_named_arrays(source, origin))
        return {k: np.array(v, copy=True) for k, v in found.items()}

    def _cached(self, key: tuple, read: Callable[[], Any]) -> Any:
        if key not in self._arrays:
            self._arrays[key] = read()
        return self._arrays[key]


def _identity(source: Source) -> tuple:
    return (source.kind, str(source.path) if source.path is not None else source.text, source.key)


def printable(text: str) -> str:
    """``text`` on one line: whitespace runs (newlines too) as one space, other control characters escaped."""
    text = " ".join(text.split())
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
