"""Large CSV/TSV tables through ``pyarrow.csv`` when the optional ``arrow`` extra is installed
(``pip install 'lossctl[arrow]'``): a multi-threaded C++ tokenizer, several times faster than
``np.loadtxt`` on large files.

It only ever reads what the built-in reader (:func:`lossctl.io.readers.parse_delimited`) would
read to the same numbers bit for bit: every cell is parsed as float64 by a correctly rounded
parser (as ``np.loadtxt`` is), no cell may be empty or a null marker, every row has the same
number of cells. Whatever pyarrow refuses (a ragged row, a word, an empty cell, a ``+`` sign, a
space before a number), or when pyarrow is not installed, :func:`read_numbers` returns None and
the built-in reader reads the table, with its own messages.
"""

from __future__ import annotations

import os

import numpy as np


def available() -> bool:
    """Whether pyarrow can be imported (the ``arrow`` extra)."""
    try:
        import pyarrow.csv  # noqa: F401
    except ImportError:
        return False
    return True


def read_numbers(data, delimiter: str) -> np.ndarray | None:
    """The (rows, columns) float64 table in ``data`` (bytes of the data rows only: no header,
    UTF-8), cells separated by ``delimiter``; None when pyarrow is missing or refuses the text."""
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv
    except ImportError:
        return None
    view = memoryview(data)
    end = next((i for i in range(min(len(view), 1 << 20)) if view[i] in (10, 13)), None)
    first = bytes(view[:end] if end is not None else view[:1 << 20])
    width = first.count(delimiter.encode()) + 1
    names = [f"c{j}" for j in range(width)]
    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(column_names=names),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, quote_char='"', double_quote=True,
                                              newlines_in_values=False, ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.float64() for n in names}, null_values=[],
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False,
                                                 check_utf8=False))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    if table.num_columns != width or any(col.null_count for col in table.columns):
        return None
    # pyarrow holds columns; the table is row-major: each record batch is interleaved into its
    # rows of the result, batches on two threads (NumPy copies release the GIL)
    out = np.empty((table.num_rows, width), dtype=np.float64)
    batches = table.to_batches()
    starts = np.cumsum([0] + [b.num_rows for b in batches])

    def fill(i: int) -> None:
        rows = out[starts[i]:starts[i + 1]]
        for j, col in enumerate(batches[i].columns):
            rows[:, j] = col.to_numpy(zero_copy_only=False)

    threads = min(2, os.cpu_count() or 1, len(batches))
    if threads <= 1:
        for i in range(len(batches)):
            fill(i)
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(fill, range(len(batches))))
    return out
