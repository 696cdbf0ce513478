"""The one number format of every table: each value (a loss, a per-sample value, a gradient
entry, an input, a derivation step) with the same number of significant digits, ``precision``
(8 unless ``--precision N`` says otherwise), in ``%g`` style: the exponent is always written
whole (``7.6502e-06``). Differences and tolerances are shown with 3 digits (how far apart, not a
value). Plain, JSON and CSV output never round: they give every digit (``repr``).

A table too wide for the terminal shows fewer digits (down to :data:`MIN_DIGITS`) rather than
cut numbers, and leaves out whole columns (saying so in its caption) rather than cut them.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from typing import Any, Iterator

import numpy as np

DEFAULT_PRECISION = 8
MAX_PRECISION = 17  # enough for every float64 to read back exactly
MIN_DIGITS = 3

_PRECISION: contextvars.ContextVar[int] = contextvars.ContextVar("precision", default=DEFAULT_PRECISION)


@contextlib.contextmanager
def precision(digits: int | None) -> Iterator[None]:
    """Tables drawn inside the block show ``digits`` significant digits (None: the default)."""
    token = _PRECISION.set(DEFAULT_PRECISION if digits is None else int(digits))
    try:
        yield
    finally:
        _PRECISION.reset(token)


def current() -> int:
    return _PRECISION.get()


def table_number(x: Any, digits: int | None = None) -> str:
    """One value for a table cell: ints as ints, floats with ``digits`` (default: the current
    precision) significant digits, never a cut exponent."""
    a = np.asarray(x)
    if a.dtype.kind in "iub":
        return str(int(a))
    v = float(a)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.{digits or current()}g}"


def difference(x: Any) -> str:
    """A difference or tolerance: 3 significant digits."""
    return table_number(x, 3)


def fit_digits(columns: list[list[float]], headers: list[str], width: int | None, fixed: int = 0) -> tuple[int, int]:
    """(digits, number of columns shown) so that a table of ``columns`` (floats) fits ``width``
    characters: fewer digits first (not below :data:`MIN_DIGITS`), then fewer columns (from the
    right). ``fixed``: the width of the columns before them (an index)."""
    digits = current()
    if width is None:
        return digits, len(columns)

    def table_width(d: int, k: int) -> int:
        total = fixed + 1
        for col, head in zip(columns[:k], headers[:k]):
            cell = max((len(table_number(v, d)) for v in col), default=1)
            total += max(cell, len(head)) + 3
        return total

    k = len(columns)
    while digits > MIN_DIGITS and table_width(digits, k) > width:
        digits -= 1
    while k > 1 and table_width(digits, k) > width:
        k -= 1
    return digits, k
