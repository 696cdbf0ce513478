"""``lossctl gradcheck``'s report (:class:`lossctl.gradcheck.GradcheckReport`) as text lines or a JSON document."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import jsonable, number


def describe(report) -> list[str]:
    """Plain-text lines: one or two per input, then the verdict."""
    lines = []
    for c in report.inputs:
        shape = "x".join(map(str, c.shape)) or "scalar"
        abs_err, abs_idx = c.max_abs
        rel_err, rel_idx = c.max_rel
        extra = []
        if c.one_sided:
            extra.append(f"{c.one_sided} one-sided")
        if c.skipped:
            extra.append(f"{c.skipped} skipped")
        note = f" ({', '.join(extra)})" if extra else ""
        lines.append(f"{c.name}: {c.n_checked} of {c.size} elements checked{note} (shape {shape}); "
                     f"worst abs error {abs_err:.3g}{_idx(abs_idx)}, worst rel error {rel_err:.3g}{_idx(rel_idx)}")
        err, idx = c.max_error
        if idx is not None:
            a, n = c.value_at(idx)
            lines.append(f"  worst error {err:.3g}{_idx(idx)}: analytic {a!r} numeric {n!r}")
        for index, left, right in c.kinks[:5]:
            a = float(c.analytic[index]) if index else float(c.analytic)
            lines.append(f"  not differentiable at this point: {c.name}{list(index) if index else ''} is a kink "
                         f"(one-sided slopes {left:.6g} and {right:.6g}); analytic {a!r} lies between them")
        if len(c.kinks) > 5:
            lines.append(f"  ... {len(c.kinks) - 5} more points where the loss is not differentiable")
    verdict = "PASS" if report.passed else "FAIL"
    op = "<=" if report.passed else ">"
    kinks = sum(len(c.kinks) for c in report.inputs)
    note = f"; not differentiable at {kinks} point{'s' if kinks != 1 else ''} (not counted)" if kinks else ""
    lines.append(f"{verdict} gradcheck {report.loss_name} (reduction {report.reduction}): "
                 f"max error {report.max_error:.3g} {op} tol {report.tol:g}{note}")
    return lines


def _idx(index) -> str:
    if index is None:
        return ""
    return f" at {list(index)}" if index else ""


def document(report) -> dict[str, Any]:
    inputs = {}
    for c in report.inputs:
        err, idx = c.max_error
        abs_err, abs_idx = c.max_abs
        rel_err, rel_idx = c.max_rel
        a, n = c.value_at(idx)
        inputs[c.name] = {
            "shape": list(c.shape), "elements": c.size, "checked": c.n_checked,
            "one_sided": c.one_sided, "skipped": c.skipped,
            "not_differentiable": [{"index": list(i), "left_slope": number(lo), "right_slope": number(hi)}
                                   for i, lo, hi in c.kinks],
            "max_error": number(err), "max_error_index": list(idx) if idx is not None else None,
            "analytic_at_max_error": number(a), "numeric_at_max_error": number(n),
            "max_abs_error": number(abs_err), "max_abs_error_index": list(abs_idx) if abs_idx is not None else None,
            "max_rel_error": number(rel_err), "max_rel_error_index": list(rel_idx) if rel_idx is not None else None,
            "analytic": jsonable(c.analytic), "numeric": jsonable(np.where(c.checked, c.numeric, np.nan)),
        }
    return {"loss_name": report.loss_name, "reduction": report.reduction, "tol": report.tol,
            "passed": report.passed, "max_error": number(report.max_error), "inputs": inputs}
