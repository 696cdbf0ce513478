"""Problem messages of suite validation: :class:`Problems` collects them (file:line: message) and
raises one :class:`~lossctl.errors.InputError`; small helpers quote keys, show values and suggest spellings."""

from __future__ import annotations

import difflib
from typing import Any, Iterable

from ..errors import InputError

MAX_PROBLEMS = 20


class Problems:
    def __init__(self, shown: str):
        self.shown = shown
        self.items: list[tuple[int, str]] = []

    def add(self, line: int, message: str) -> None:
        self.items.append((line, message))

    def raise_if_any(self) -> None:
        if not self.items:
            return
        items = sorted(self.items, key=lambda t: t[0])
        lines = [f"{self.shown}:{line}: {msg}" if line else f"{self.shown}: {msg}" for line, msg in items[:MAX_PROBLEMS]]
        if len(items) > MAX_PROBLEMS:
            lines.append(f"... and {len(items) - MAX_PROBLEMS} more problems")
        if len(items) > 1:
            lines.insert(0, f"{self.shown}: {len(items)} problems; no case was run")
            raise InputError("\n  ".join(lines))
        raise InputError(lines[0])


def suggest(key: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(key), list(choices), n=1, cutoff=0.6)
    return f"; did you mean {quote(close[0])}?" if close else ""


def quote(key: Any) -> str:
    return f"'{key}'"


def show(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return type_name(value)
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def type_name(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"text {value!r}" if len(value) <= 40 else "text"
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    return type(value).__name__
