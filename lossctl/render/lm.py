"""Output of ``lossctl lm``: JSON, plain, CSV (no rich; the tables are in :mod:`lossctl.render.table`).

The JSON object carries ``loss_name`` "lm", ``normalize``, ``tokens``, ``loss``, ``perplexity``,
``bits_per_token``, ``bits_per_byte`` (with bytes), ``denominator``; with per-sample values
``per_sample`` (the NLL of every position, 0 where it does not count), ``per_sequence`` and
``mean_sequence_perplexity``; ``grad`` {"logits"}, ``steps``, ``check`` and ``note`` (why a
loss is NaN) as for every loss.
"""

from __future__ import annotations

import csv
import json
from typing import Any, TextIO

import numpy as np

from . import fmt_float, jsonable

SEQUENCE_COLUMNS = ("tokens", "nll_sum", "mean_nll", "perplexity", "bits_per_byte")


def metrics(result) -> dict[str, Any]:
    """The headline numbers, in output order (bits_per_byte only when bytes were given)."""
    out = {"tokens": result.tokens, "loss": result.loss, "perplexity": result.perplexity,
           "bits_per_token": result.bits_per_token}
    if result.bits_per_byte is not None:
        out["bits_per_byte"] = result.bits_per_byte
    out["denominator"] = result.denominator
    return out


def sequence_rows(result) -> list[dict[str, Any]]:
    table = result.per_sequence or {}
    n = len(table.get("tokens", []))
    return [{k: table[k][i].item() for k in SEQUENCE_COLUMNS if k in table} for i in range(n)]


def document(result, report=None, *, per_sample: bool = False, grad: bool = False, explain: bool = False) -> dict:
    doc: dict[str, Any] = {"loss_name": "lm", "normalize": result.normalize, "dtype": result.dtype}
    doc.update({k: jsonable(v) for k, v in metrics(result).items()})
    if per_sample:
        doc["per_sample"] = jsonable(result.per_token)
        doc["per_sequence"] = [{k: jsonable(v) for k, v in row.items()} for row in sequence_rows(result)]
        doc["mean_sequence_perplexity"] = jsonable(result.mean_sequence_perplexity)
    if grad and result.grad is not None:
        doc["grad"] = {"logits": jsonable(result.grad)}
    if explain and result.steps is not None:
        doc["steps"] = [{"label": s.label, "formula": s.formula, "value": jsonable(s.value)} for s in result.steps]
    if result.note:
        doc["note"] = result.note
    if report is not None:
        from .text import check_document

        doc["check"] = check_document(report)
    return doc


def write_json(out: TextIO, doc: dict) -> None:
    json.dump(doc, out, allow_nan=False)
    out.write("\n")


def write_plain(out: TextIO, result, *, per_sample: bool = False, grad: bool = False, explain: bool = False) -> None:
    """The loss alone (round-trips); extra parts under ``# name`` lines."""
    out.write(fmt_float(result.loss) + "\n")
    if per_sample:
        rows = sequence_rows(result)
        cols = [c for c in SEQUENCE_COLUMNS if rows and c in rows[0]]
        out.write(f"# per_sequence (sequence {' '.join(cols)})\n")
        for i, row in enumerate(rows):
            out.write(" ".join([str(i)] + [fmt_float(row[c]) for c in cols]) + "\n")
        out.write(f"# mean_sequence_perplexity {fmt_float(result.mean_sequence_perplexity)}\n")
    if grad and result.grad is not None:
        g = np.asarray(result.grad)
        out.write(f"# grad logits (shape {'x'.join(map(str, g.shape))})\n")
        for row in g.reshape(-1, g.shape[-1]):
            out.write(" ".join(fmt_float(v) for v in row) + "\n")
    if explain and result.steps is not None:
        out.write("# steps\n")
        for s in result.steps:
            value = "-" if s.value is None else fmt_float(s.value)
            out.write(f"{s.label}: {s.formula} = {value}\n")


def write_csv(out: TextIO, result, *, per_sample: bool = False) -> None:
    """One row of the headline numbers; with per-sample values, one row per sequence."""
    writer = csv.writer(out, lineterminator="\n")
    if per_sample:
        rows = sequence_rows(result)
        cols = [c for c in SEQUENCE_COLUMNS if rows and c in rows[0]]
        writer.writerow(["sequence", *cols])
        for i, row in enumerate(rows):
            writer.writerow([i, *(fmt_float(row[c]) for c in cols)])
        return
    m = metrics(result)
    writer.writerow(list(m))
    writer.writerow([fmt_float(v) for v in m.values()])
