"""Large plain numeric CSV/TSV tables through lossctl's compiled tokenizer (``lossctl.io._csv``):
a tokenizer that parses each cell with Clinger's exact fast path (at most 15 significant
digits) or libc's correctly rounded ``strtod``, on two threads without the GIL.

It reads only tables of plain numbers (``[+-]digits[.digits][e[+-]digits]`` cells, one
separator, every row as wide as the first, blank lines skipped), which it gives bit for bit as
``np.loadtxt`` (correctly rounded too) does; anything else (quotes, spaces, ``nan``, a ragged
row), or without the extension, :func:`read_numbers` returns None and the caller reads the
table another way.
"""

from __future__ import annotations

import os

import numpy as np


def _extension():
    """The compiled tokenizer, unless ``LOSSCTL_PURE`` asks for pure Python/NumPy (as it does
    for the loss kernels) or it is not built (no C compiler at install time)."""
    if os.environ.get("LOSSCTL_PURE", "").strip().lower() not in ("", "0", "false", "no"):
        return None
    try:
        from . import _csv
    except ImportError:
        return None
    return _csv


def read_numbers(data: bytes, offset: int, delimiter: str) -> np.ndarray | None:
    """The (rows, columns) float64 table in ``data[offset:]`` (the data rows: no header), or None."""
    ext = _extension()
    if ext is None or len(delimiter) != 1:
        return None
    view = memoryview(data)[offset:]
    first_end = data.find(b"\n", offset)
    first = data[offset:first_end if first_end >= 0 else len(data)]
    width = first.count(delimiter.encode()) + 1
    out = np.empty((ext.count_lines(view), width), dtype=np.float64)
    got = ext.parse_csv(view, delimiter, width, out, min(2, os.cpu_count() or 1))
    if got <= 0:
        return None
    return out[:got]
