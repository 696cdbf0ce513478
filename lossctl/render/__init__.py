"""Rendering: a Result (and a CheckReport) in, text out. Nothing here computes a loss.

``plain``, ``json`` and ``csv`` write plain text; only :mod:`lossctl.render.table`
uses rich, and it is imported only when a table is drawn.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..io.per_sample_csv import fmt_float  # noqa: F401  (one float spelling for text and files)

FORMATS = ("auto", "table", "json", "plain", "csv")


def number(x: float) -> float | str:
    """A float for JSON, with non-finite values as the strings 'nan', 'inf', '-inf'."""
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def jsonable(value: Any) -> Any:
    """Nested lists of numbers (JSON-safe) from arrays, scalars, tuples."""
    if value is None:
        return None
    if isinstance(value, (str, bool)):
        return value
    a = np.asarray(value)
    if a.dtype.kind in "iub":
        return a.tolist()
    if a.dtype.kind in "f":
        if a.ndim == 0:
            return number(a)
        return [jsonable(v) for v in a] if a.ndim > 1 else [number(v) for v in a.tolist()]
    return a.tolist()
