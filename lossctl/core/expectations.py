"""Compare a :class:`~lossctl.api.Result` with expected values (``numpy.isclose`` semantics).

Pure: returns a :class:`CheckReport`; rendering and exit codes are the caller's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

DEFAULT_RTOL = 1e-7
DEFAULT_ATOL = 1e-9


@dataclass
class Comparison:
    """One compared quantity: ``what`` is ``loss``, ``per_sample`` or ``grad.logits``."""

    what: str
    passed: bool
    expected: Any
    actual: Any
    abs_diff: float
    rel_diff: float
    worst_index: tuple[int, ...] | None = None
    problem: str = ""  # e.g. a shape mismatch


@dataclass
class CheckReport:
    rtol: float
    atol: float
    comparisons: list[Comparison] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.comparisons)


def compare(what: str, actual: Any, expected: Any, rtol: float, atol: float) -> Comparison:
    """``|actual − expected| <= atol + rtol·|expected|`` elementwise, NaN equal to NaN."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape and e.size != 1:
        return Comparison(what, False, expected, actual, float("nan"), float("nan"),
                          problem=f"shape {a.shape} but expected shape {e.shape}")
    e_b = np.broadcast_to(e, a.shape)
    close = np.isclose(a, e_b, rtol=rtol, atol=atol, equal_nan=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = np.abs(a - e_b)
        rel = diff / np.abs(e_b)
    both_nan = np.isnan(a) & np.isnan(e_b)
    diff = np.where(both_nan | (a == e_b), 0.0, diff)
    rel = np.where(both_nan | (a == e_b), 0.0, rel)
    worst = None
    if a.ndim and a.size:
        score = np.where(close, -1.0, np.nan_to_num(diff, nan=np.inf, posinf=np.inf))
        worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(score)), a.shape))
    max_abs = float(np.max(np.nan_to_num(diff, nan=np.inf))) if diff.size else 0.0
    max_rel = float(np.max(np.nan_to_num(rel, nan=np.inf))) if rel.size else 0.0
    one_nan = np.isnan(a) ^ np.isnan(e_b)
    at = worst if worst is not None else ()
    if one_nan.size and bool(one_nan[at]):
        # a NaN on one side has no distance to the other: say what differs instead of "diff inf"
        where = f" at index {list(at)}" if at else ""
        return Comparison(what, False, expected, actual, float("nan"), float("nan"), worst,
                          problem=f"expected {_num(e_b[at])}, actual {_num(a[at])}{where}: a NaN matches only a NaN")
    return Comparison(what, bool(np.all(close)), expected, actual, max_abs, max_rel, worst)


def _num(x) -> str:
    return repr(float(x)) if np.isfinite(x) else str(float(x))


def check_result(result, *, expect: Any = None, expect_per_sample: Any = None,
                 expect_grad: dict[str, Any] | None = None,
                 rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL) -> CheckReport:
    report = CheckReport(rtol, atol)
    if expect is not None:
        report.comparisons.append(compare("loss", result.loss, expect, rtol, atol))
    if expect_per_sample is not None:
        report.comparisons.append(compare("per_sample", result.per_sample, expect_per_sample, rtol, atol))
    for name, expected in (expect_grad or {}).items():
        if name not in result.grad:
            report.comparisons.append(Comparison(f"grad.{name}", False, expected, None, float("nan"), float("nan"),
                                                 problem=f"no gradient for '{name}' (have: {', '.join(result.grad)})"))
            continue
        report.comparisons.append(compare(f"grad.{name}", result.grad[name], expected, rtol, atol))
    return report
