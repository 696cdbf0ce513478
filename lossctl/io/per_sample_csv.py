"""The per-sample CSV table: one format for ``--format csv``, ``-o FILE.csv`` and the streamed writer.

One row per sample (``sample, loss``, then each gradient's entries flattened per sample) when
per-sample values are asked for or the reduction is ``none``; otherwise a ``loss`` column with
one row. Each number is written so that it reads back as the same float (:func:`fmt_float`).
"""

from __future__ import annotations

from typing import Any, TextIO

import numpy as np


def fmt_float(x: Any) -> str:
    """Round-tripping text for one value: ``repr`` of a Python float, ints as ints."""
    a = np.asarray(x)
    if a.dtype.kind in "iub":
        return str(int(a))
    return repr(float(a))


def write_csv(out: TextIO, result, *, per_sample: bool = False, grad: bool = False) -> None:
    """One row per sample (``index, loss, grad…``) when per-sample values are asked for
    or the reduction is none; otherwise a ``loss`` column with one row."""
    import csv

    writer = csv.writer(out, lineterminator="\n")
    if not per_sample and result.reduction != "none" and not grad:
        writer.writerow(["loss"])
        writer.writerow([fmt_float(result.loss)])
        return
    header, columns = per_sample_columns(result, grad=grad)
    writer.writerow(header)
    for row in zip(*columns):
        writer.writerow(row)


def per_sample_columns(result, *, grad: bool) -> tuple[list[str], list[list[str]]]:
    """Columns of a per-sample table: index, loss, then each gradient's entries flattened per sample.

    A gradient whose samples lie along another axis than the first (``result.batch_axis``, as
    CTC's (T, N, C)) is grouped by sample; one that does not split into one row per sample is left out.
    """
    values = np.asarray(result.per_sample)
    flat = values.reshape(-1) if values.ndim else values.reshape(1)
    n = flat.size
    index = [str(i) for i in range(n)]
    header = ["sample", "loss"]
    columns = [index, [fmt_float(v) for v in flat]]
    if grad:
        axis = (getattr(result, "batch_axis", 0) or 0) if values.ndim else 0
        for name, g in result.grad.items():
            g = np.asarray(g)
            if axis and g.ndim > axis:
                g = np.moveaxis(g, axis, 0)
            rows = g.reshape(n, -1) if n and g.size % n == 0 else g.reshape(1, -1)
            if rows.shape[0] != n:
                continue
            for j in range(rows.shape[1]):
                header.append(f"grad_{name}_{j}" if rows.shape[1] > 1 else f"grad_{name}")
                columns.append([fmt_float(v) for v in rows[:, j]])
    return header, columns
