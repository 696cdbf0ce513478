"""``.parquet``, ``.arrow`` and ``.feather`` tables through the optional ``pyarrow``.

``FILE.parquet:COLUMN`` reads one column; without a key a one-column table is
that column and a table of several numeric columns is ``(rows, columns)``, as
for CSV. A list column (fixed-size or not, nested to any depth) whose rows all
have the same length becomes one more dimension: ``list<float>`` of length V
over N rows is ``(N, V)``. Nulls, text and other non-numeric columns are refused
(exit 3). Without pyarrow: exit 2, naming ``pip install 'lossctl[arrow]'``.

Arrow IPC files (``.arrow``, ``.feather`` v2) are memory-mapped, so their
numeric columns are not copied; Parquet is decoded into memory, and its
declared (uncompressed) size is checked against the reading cap first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, UsageError

EXTRA = "arrow"


def _pyarrow(origin: str):
    try:
        import pyarrow
        import pyarrow.compute  # noqa: F401
        import pyarrow.ipc  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise UsageError(f"{origin}: reading Parquet/Arrow files needs pyarrow, which is not installed: "
                         f"pip install 'lossctl[{EXTRA}]'") from None
    return pyarrow


def _table(pa, path: Path, key: str | None, origin: str):
    from .readers import size_text, max_input_bytes

    suffix = path.suffix.lower()
    if suffix == ".parquet":
        pf = pa.parquet.ParquetFile(str(path), memory_map=True)
        meta = pf.metadata
        names = pf.schema_arrow.names
        _check_key(key, names, origin)
        wanted = {key} if key is not None else set(names)
        declared = sum(meta.row_group(g).column(c).total_uncompressed_size
                       for g in range(meta.num_row_groups) for c in range(meta.num_columns)
                       if meta.row_group(g).column(c).path_in_schema.split(".")[0] in wanted)
        if declared > max_input_bytes():
            raise InputError(f"{origin}: the Parquet data declares {size_text(declared)} uncompressed, more than lossctl "
                             f"reads into memory ({size_text(max_input_bytes())}); raise LOSSCTL_MAX_INPUT_BYTES")
        return pf.read(columns=[key] if key is not None else None)
    source = pa.memory_map(str(path), "r")
    try:
        reader = pa.ipc.open_file(source)
        table = reader.read_all()
    except pa.ArrowInvalid:
        source.seek(0)
        try:
            table = pa.ipc.open_stream(source).read_all()  # the IPC stream format, also named .arrow
        except pa.ArrowInvalid:
            import pyarrow.feather

            table = pyarrow.feather.read_table(str(path), memory_map=True)  # Feather v1
    _check_key(key, table.column_names, origin)
    return table.select([key]) if key is not None else table


def _check_key(key: str | None, names: list[str], origin: str) -> None:
    if key is not None and key not in names:
        listed = ", ".join(names[:10]) + (f", ... ({len(names)} in all)" if len(names) > 10 else "")
        raise InputError(f"{origin}: no column '{key}' (columns: {listed or 'none'})")


def _column(pa, column, name: str, origin: str) -> np.ndarray:
    """One column (a ChunkedArray) as an array: numbers as they are, list rows as a dimension."""
    array = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    return _values(pa, array, name, origin, (len(array),))


def _values(pa, array, name: str, origin: str, shape: tuple[int, ...]) -> np.ndarray:
    t = array.type
    if array.null_count:
        first = int(pa.compute.index(pa.compute.is_null(array), True).as_py())
        what = "a null value" if array.null_count == 1 else f"{array.null_count} null values"
        raise InputError(f"{origin}: column '{name}' has {what} (the first at flat index {first})")
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        lengths = pa.compute.list_value_length(array)
        if len(array) == 0:
            width = t.list_size if pa.types.is_fixed_size_list(t) else 0
        else:
            bounds = pa.compute.min_max(lengths)
            lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
            if lo != hi:
                raise InputError(f"{origin}: column '{name}' holds lists of different lengths ({lo} to {hi}); "
                                 "only lists of one length make an array")
            width = lo
        return _values(pa, array.flatten(), name, origin, shape + (width,))
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        values = array.to_numpy(zero_copy_only=False)
        return values.reshape(shape)
    raise InputError(f"{origin}: column '{name}' holds {t}, not numbers")


def read_file(path: Path, key: str | None, origin: str, *, lazy: bool = False) -> Any:
    pa = _pyarrow(origin)
    try:
        table = _table(pa, path, key, origin)
        if key is not None:
            return _column(pa, table.column(0), key, origin)
        if table.num_columns == 0:
            raise InputError(f"{origin}: the table has no columns")
        if table.num_columns == 1:
            return _column(pa, table.column(0), table.column_names[0], origin)
        columns = [_column(pa, table.column(i), n, origin) for i, n in enumerate(table.column_names)]
        if any(c.ndim != 1 for c in columns):
            raise InputError(f"{origin}: the table has {table.num_columns} columns, some of them lists; "
                             "name one as FILE:COLUMN")
        return np.stack(columns, axis=1)
    except (InputError, UsageError):
        raise
    except MemoryError:
        raise InputError(f"{origin}: too large to fit in memory") from None
    except (pa.ArrowException, OSError, ValueError, IndexError, KeyError) as e:
        msg = " ".join(str(e).split())[:200] or type(e).__name__
        raise InputError(f"{origin}: not a valid {path.suffix.lower()} file: {msg}") from None
