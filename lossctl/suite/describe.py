"""Describing results in text: values, comparisons, and a failed case's one-line summary."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.expectations import Comparison

if TYPE_CHECKING:
    from .run import CaseResult


def fmt_value(x: Any) -> str:
    a = np.asarray(x, dtype=np.float64) if not isinstance(x, str) else None
    if a is None:
        return str(x)
    if a.ndim == 0:
        return repr(float(a))
    return np.array2string(a, separator=", ", threshold=12, edgeitems=3, floatmode="maxprec", precision=6).replace("\n", "")


def _at(value: Any, index) -> Any:
    a = np.asarray(value, dtype=np.float64)
    if index is not None and a.ndim == len(index):
        return a[tuple(index)]
    if a.size == 1:
        return a.reshape(())
    return a


def describe_comparison(c: Comparison) -> str:
    """``loss expected 1.5 actual 1.50007 abs 7e-05 rel 4.7e-05 [worst index [1, 2]]``."""
    if c.problem:
        return f"{c.what} {c.problem}"
    expected = _at(c.expected, c.worst_index)
    actual = _at(c.actual, c.worst_index)
    text = (f"{c.what} expected {fmt_value(expected)} actual {fmt_value(actual)} "
            f"abs {c.abs_diff:.3g} rel {c.rel_diff:.3g}")
    if c.worst_index is not None:
        text += f" worst index {list(c.worst_index)}"
    return text


def failure_summary(r: CaseResult) -> str:
    if r.report is None or not r.report.comparisons:
        return "nothing to check (no expect); 'lossctl check --update' pins the current values"
    return "; ".join(describe_comparison(c) for c in r.report.comparisons if not c.passed)
