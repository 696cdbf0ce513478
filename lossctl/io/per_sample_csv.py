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
    """Columns of a per-sample table: index, loss, then each gradient's entries of that sample
    (:func:`sample_rows`); a gradient that does not split into one row per sample is left out."""
    values = np.asarray(result.per_sample)
    flat = values.reshape(-1) if values.ndim else values.reshape(1)
    n = flat.size
    index = [str(i) for i in range(n)]
    header = ["sample", "loss"]
    columns = [index, [fmt_float(v) for v in flat]]
    if grad:
        for name, g in result.grad.items():
            rows = sample_rows(np.asarray(g), values.shape, batch_axis=getattr(result, "batch_axis", 0) or 0,
                               class_axis=getattr(result, "class_axis", None))
            if rows is None:
                continue
            for j in range(rows.shape[1]):
                header.append(f"grad_{name}_{j}" if rows.shape[1] > 1 else f"grad_{name}")
                columns.append([fmt_float(v) for v in rows[:, j]])
    return header, columns


def sample_rows(g: np.ndarray, values_shape: tuple[int, ...], *, batch_axis: int = 0,
                class_axis: int | None = None) -> np.ndarray | None:
    """``g`` as one row per per-sample value, in the order of ``per_sample.reshape(-1)``: row k
    holds the entries of ``g`` that belong to sample k. The class axis (``ce``'s logits
    (N, C, d1): per_sample (N, d1)) is moved last first, so that a row is that sample's C
    entries, not C neighbouring numbers; samples along another axis than the first
    (``batch_axis``, CTC's (T, N, C)) are grouped by sample. None when ``g`` does not split so."""
    n = int(np.prod(values_shape, dtype=np.int64)) if values_shape else 1
    if n == 0 or g.size % n:
        return None
    if class_axis is not None and g.ndim == len(values_shape) + 1 and 0 <= class_axis < g.ndim \
            and g.shape[:class_axis] + g.shape[class_axis + 1:] == tuple(values_shape):
        return np.moveaxis(g, class_axis, -1).reshape(n, -1)
    if batch_axis and values_shape and g.ndim > batch_axis:
        g = np.moveaxis(g, batch_axis, 0)
    return g.reshape(n, -1)
