"""The ``plain``, ``json`` and ``csv`` formats (no rich)."""

from __future__ import annotations

import json
from typing import Any, TextIO

import numpy as np

from ..io.per_sample_csv import per_sample_columns, write_csv  # noqa: F401  (the CSV table is a file format)
from . import fmt_float, jsonable


def document(result, report=None, *, per_sample: bool = False, grad: bool = False, explain: bool = False,
             extra: dict | None = None) -> dict[str, Any]:
    """The JSON object of a loss call: ``loss_name``, ``reduction``, ``loss``, and what was asked for."""
    doc: dict[str, Any] = {
        "loss_name": result.loss_name,
        "reduction": result.reduction,
        "loss": jsonable(result.loss),
    }
    if getattr(result, "convention", "torch") != "torch":
        doc["convention"] = result.convention
    if result.penalties:
        doc["data_loss"] = jsonable(result.data_loss)
        doc["penalties"] = {k: jsonable(v) for k, v in result.penalties.items()}
    if extra:
        doc.update(extra)
    if per_sample:
        doc["per_sample"] = jsonable(result.per_sample)
    if grad:
        doc["grad"] = {name: jsonable(g) for name, g in result.grad.items()}
    if explain and result.steps is not None:
        doc["steps"] = [
            {"label": s.label, "formula": s.formula, "value": jsonable(s.value), "per_sample": s.per_sample}
            for s in result.steps
        ]
        doc["rows_shown"] = result.shown_rows
        doc["rows_total"] = result.total_rows
    if report is not None:
        doc["check"] = check_document(report)
    return doc


def check_document(report) -> dict[str, Any]:
    return {
        "passed": report.passed,
        "rtol": report.rtol,
        "atol": report.atol,
        "comparisons": [
            {
                "what": c.what,
                "passed": c.passed,
                "expected": jsonable(c.expected),
                "actual": jsonable(c.actual),
                "abs_diff": jsonable(c.abs_diff),
                "rel_diff": jsonable(c.rel_diff),
                **({"worst_index": list(c.worst_index)} if c.worst_index is not None else {}),
                **({"problem": c.problem} if c.problem else {}),
            }
            for c in report.comparisons
        ],
    }


def write_json(out: TextIO, doc: dict) -> None:
    json.dump(doc, out, allow_nan=False)
    out.write("\n")


def write_plain(out: TextIO, result, *, per_sample: bool = False, grad: bool = False, explain: bool = False) -> None:
    """The loss alone (``repr``, round-trips); reduction none: one value a line.

    Extra parts follow under ``# name (shape)`` lines, arrays as one row a line.
    """
    if result.reduction == "none":
        for v in np.ravel(result.loss):
            out.write(fmt_float(v) + "\n")
    else:
        out.write(fmt_float(result.loss) + "\n")
    if result.penalties:
        out.write(f"# data_loss {fmt_float(result.data_loss)}\n")
        for name, value in result.penalties.items():
            out.write(f"# penalty {name} {fmt_float(value)}\n")
    if per_sample:
        _plain_array(out, "per_sample", result.per_sample)
    if grad:
        for name, g in result.grad.items():
            _plain_array(out, f"grad {name}", g)
    if explain and result.steps is not None:
        out.write(f"# steps ({result.shown_rows} of {result.total_rows} rows)\n")
        for s in result.steps:
            out.write(f"{s.label}: {s.formula} = {_inline(s.value)}\n")


def _plain_array(out: TextIO, title: str, a: np.ndarray) -> None:
    a = np.asarray(a)
    out.write(f"# {title} (shape {'x'.join(map(str, a.shape)) or 'scalar'})\n")
    rows = a.reshape(1, 1) if a.ndim == 0 else (a.reshape(-1, 1) if a.ndim == 1 else a.reshape(a.shape[0], -1))
    for row in rows:
        out.write(" ".join(fmt_float(v) for v in row) + "\n")


def _inline(value: Any) -> str:
    if value is None:
        return "-"
    a = np.asarray(value)
    if a.ndim == 0:
        return fmt_float(a)
    return json.dumps(jsonable(a))


def write_check_plain(err: TextIO, report) -> None:
    """A failed or passed check as text: expected, actual, difference."""
    for c in report.comparisons:
        status = "ok" if c.passed else "FAIL"
        if c.problem:
            err.write(f"check {status} {c.what}: {c.problem}\n")
            continue
        where = f" at index {list(c.worst_index)}" if c.worst_index is not None and not c.passed else ""
        expected, actual = _pick(c.expected, c.worst_index), _pick(c.actual, c.worst_index)
        err.write(
            f"check {status} {c.what}: expected {expected}, actual {actual}, "
            f"abs diff {c.abs_diff:.3g}, rel diff {c.rel_diff:.3g}{where} (rtol {report.rtol:g}, atol {report.atol:g})\n"
        )


def _pick(value: Any, index) -> str:
    a = np.asarray(value, dtype=np.float64)
    if index is not None and a.ndim and a.size:
        a = np.broadcast_to(a, a.shape)[index] if a.ndim == len(index) else a
    return fmt_float(a) if a.ndim == 0 else json.dumps(jsonable(a))


def compare_document(cmp, *, per_sample: bool = False) -> dict[str, Any]:
    """``lossctl compare --format json``: {"loss_name", "conventions": {...}, "differences": [...]}."""
    conventions: dict[str, Any] = {}
    for name, mirrors in cmp.mirrors.items():
        entry: dict[str, Any] = {"mirrors": mirrors}
        if name in cmp.results:
            r = cmp.results[name]
            entry.update({"loss": jsonable(r.loss), "dtype": r.dtype, "divided_by": jsonable(r.denominator)})
            if per_sample:
                entry["per_sample"] = jsonable(r.per_sample)
        else:
            entry["refused"] = cmp.refused[name]
        conventions[name] = entry
    return {
        "loss_name": cmp.loss_name,
        "reduction": cmp.reduction,
        "conventions": conventions,
        "differences": [
            {"between": list(d.between), "step": d.step, "reason": d.reason,
             **({"sample": list(d.sample)} if d.sample is not None else {}),
             **({"values": {k: jsonable(v) for k, v in d.values.items()}} if d.values else {})}
            for d in cmp.differences
        ],
    }


def write_compare_plain(out: TextIO, cmp, *, per_sample: bool = False) -> None:
    """One ``convention<TAB>loss`` line each (``refused: why`` for a framework that cannot compute
    the call), then ``# a vs b: reason`` for each pair that differs."""
    for name in cmp.mirrors:
        if name in cmp.results:
            out.write(f"{name}\t{fmt_float(cmp.results[name].loss) if cmp.results[name].reduction != 'none' else ''}\n")
            if per_sample or cmp.results[name].reduction == "none":
                for v in np.ravel(cmp.results[name].per_sample):
                    out.write(f"  {fmt_float(v)}\n")
        else:
            out.write(f"{name}\trefused: {cmp.refused[name]}\n")
    for d in cmp.differences:
        out.write(f"# {d.between[0]} vs {d.between[1]}: {d.reason}\n")
