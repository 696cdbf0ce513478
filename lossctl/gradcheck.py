"""Analytic gradients against central finite differences (``lossctl gradcheck``). Pure.

For every differentiable input (the keys of ``Result.grad``: the prediction and
inputs like ``var``), element by element:

* step ``h = cbrt(eps) · max(1, |x|)`` (eps = 2.2e-16, so h ≈ 6.1e-6 for |x| ≤ 1),
  which balances truncation error O(h²) against rounding error O(eps/h); the
  difference is divided by the step actually taken, ``(x+h) − (x−h)``;
* the loss is evaluated in float64 whatever ``dtype`` the analytic gradient was
  computed in; with ``reduction='none'`` the function is the sum of the values,
  as for the gradient;
* where ``x ± h`` leaves the loss's domain (an error, or a non-finite loss while
  the loss at ``x`` is finite; e.g. a probability of exactly 0 or 1) a
  second-order one-sided difference on the valid side is used; an element with
  no valid side is skipped and counted.

An element's error is ``|analytic − numeric| / max(1, |numeric|)`` (absolute for
small gradients, relative for large ones); the check passes when the largest
error is at most ``tol``. The worst absolute and relative differences are
reported with their indices as well.

At a kink (``l1`` at 0, ``hinge`` at the margin, ...) the loss has no derivative: where
an element fails, its one-sided slopes are compared at steps h and h/2; if they differ by
the same jump at both (a smooth function's differ by f''·h, which halves with h), the
element is a kink. It is not counted as an error when the analytic value lies between the
two slopes (a subgradient, as PyTorch's autograd gives there), and the report says the
loss is not differentiable at that point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from .errors import LossctlError

EPS = float(np.finfo(np.float64).eps)
STEP_SCALE = EPS ** (1.0 / 3.0)
DEFAULT_TOL = 1e-6


@dataclass
class InputCheck:
    name: str
    shape: tuple[int, ...]
    analytic: np.ndarray
    numeric: np.ndarray
    checked: np.ndarray  # bool mask of the elements compared
    one_sided: int = 0
    skipped: int = 0
    # elements where the loss is not differentiable: (index, left slope, right slope)
    kinks: list[tuple[tuple[int, ...], float, float]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    @property
    def n_checked(self) -> int:
        return int(self.checked.sum())

    def _diff(self) -> np.ndarray:
        a, n = self.analytic, self.numeric
        with np.errstate(invalid="ignore"):
            d = np.abs(a - n)
        same = (a == n) | (np.isnan(a) & np.isnan(n))
        d = np.where(same, 0.0, np.nan_to_num(d, nan=np.inf))
        return np.where(self.checked, d, 0.0)

    def errors(self) -> np.ndarray:
        """|a − n| / max(1, |n|) per element (0 where not checked)."""
        with np.errstate(invalid="ignore"):
            scale = np.maximum(1.0, np.nan_to_num(np.abs(self.numeric), nan=1.0, posinf=1.0))
        return self._diff() / scale

    def _worst(self, values: np.ndarray) -> tuple[float, tuple[int, ...] | None]:
        if not self.checked.any():
            return 0.0, None
        flat = int(np.argmax(np.where(self.checked, values, -1.0)))
        index = tuple(int(i) for i in np.unravel_index(flat, self.analytic.shape)) if self.analytic.ndim else ()
        return float(values.reshape(-1)[flat]), index

    @property
    def max_error(self) -> tuple[float, tuple[int, ...] | None]:
        return self._worst(self.errors())

    @property
    def max_abs(self) -> tuple[float, tuple[int, ...] | None]:
        return self._worst(self._diff())

    @property
    def max_rel(self) -> tuple[float, tuple[int, ...] | None]:
        d = self._diff()
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(d == 0, 0.0, d / np.abs(self.numeric))
        return self._worst(np.nan_to_num(rel, nan=np.inf))

    def value_at(self, index) -> tuple[float, float]:
        if index is None:
            return math.nan, math.nan
        return float(self.analytic[index]), float(self.numeric[index])


@dataclass
class GradcheckReport:
    loss_name: str
    reduction: str
    tol: float
    inputs: list[InputCheck] = field(default_factory=list)

    @property
    def max_error(self) -> float:
        return max((c.max_error[0] for c in self.inputs), default=0.0)

    @property
    def passed(self) -> bool:
        e = self.max_error
        return not math.isnan(e) and e <= self.tol


def gradcheck(case: Mapping[str, Any], *, tol: float = DEFAULT_TOL, origins: Mapping[str, str] | None = None,
              max_elements: int | None = None) -> GradcheckReport:
    """Check ``compute(case).grad`` against central differences; ``case`` as for :func:`lossctl.compute`
    (arrays already read). ``max_elements`` limits the elements checked per input (evenly spaced)."""
    case = dict(case)
    result = _compute(case, grad=True, origins=origins)
    report = GradcheckReport(result.loss_name, result.reduction, tol)
    f64 = dict(case)
    f64["dtype"] = "float64"
    for name, analytic in result.grad.items():
        x, with_values = _input(f64, name)  # user layout, as the gradient
        analytic = np.asarray(analytic, dtype=np.float64)
        if analytic.shape != x.shape:
            raise RuntimeError(f"gradient of {name} has shape {analytic.shape}, the input {x.shape}")
        report.inputs.append(_check_input(with_values, name, x, analytic, origins, max_elements, tol))
    return report


def _input(case: dict, name: str):
    """(the input's values, a function giving the case with other values for it). Gradients of
    regularised calls are keyed ``params`` / ``params.NAME`` (arrays inside ``case['params']``)."""
    if name in case and not isinstance(case[name], Mapping):
        return np.array(case[name], dtype=np.float64), lambda v: {**case, name: v}
    head, _, sub = name.partition(".")
    params = case.get(head)
    if isinstance(params, Mapping):
        key = sub or "params"
        return np.array(params[key], dtype=np.float64), lambda v: {**case, head: {**params, key: v}}
    if params is not None and sub in ("", "params"):
        return np.array(params, dtype=np.float64), lambda v: {**case, head: v}
    raise RuntimeError(f"no input for the gradient {name!r}")


def _compute(case: Mapping[str, Any], *, grad: bool, origins: Mapping[str, str] | None):
    """The call's result: the loss engine's, or lm's / linear-ce's (token batches)."""
    from .tokens import COMMAND_NAMES, suite_result

    if case.get("loss") in COMMAND_NAMES:
        return suite_result(case, grad=grad, origins=origins)
    from .api import compute

    return compute(case, grad=grad, origins=origins)


def _check_input(with_values, name, x, analytic, origins, max_elements, tol) -> InputCheck:
    def f(values: np.ndarray) -> float:
        try:
            r = _compute(with_values(values), grad=False, origins=origins)
        except LossctlError:
            return math.nan
        loss = np.asarray(r.loss, dtype=np.float64)
        return float(loss.sum()) if loss.ndim else float(loss)

    numeric = np.full(x.shape, np.nan)
    checked = np.zeros(x.shape, dtype=bool)
    flat_x = x.reshape(-1)
    indices = np.arange(flat_x.size)
    if max_elements is not None and flat_x.size > max_elements:
        indices = np.unique(np.linspace(0, flat_x.size - 1, max_elements).round().astype(int))
    f0 = f(x)
    one_sided = skipped = 0
    kinks: list[tuple[tuple[int, ...], float, float]] = []
    flat_a = analytic.reshape(-1)
    work = x.copy()
    flat = work.reshape(-1)
    num_flat = numeric.reshape(-1)
    chk_flat = checked.reshape(-1)
    for i in indices:
        xi = flat_x[i]
        h = STEP_SCALE * max(1.0, abs(xi))

        def at(v: float) -> float:
            flat[i] = v
            try:
                return f(work)
            finally:
                flat[i] = xi

        xp, xm = xi + h, xi - h
        fp, fm = at(xp), at(xm)
        if math.isfinite(fp) and math.isfinite(fm):
            num_flat[i] = (fp - fm) / (xp - xm)
            if abs(flat_a[i] - num_flat[i]) / max(1.0, abs(num_flat[i])) > tol and math.isfinite(f0):
                slopes = _kink(at, xi, h, f0, fp, fm)
                if slopes is not None and min(slopes) - tol <= flat_a[i] <= max(slopes) + tol:
                    index = tuple(int(k) for k in np.unravel_index(i, x.shape)) if x.ndim else ()
                    kinks.append((index, *slopes))
                    continue  # a subgradient at a point without a derivative: not an error
        elif math.isfinite(f0) and (math.isfinite(fp) or math.isfinite(fm)):
            sign = 1.0 if math.isfinite(fp) else -1.0
            x1, x2 = xi + sign * h, xi + 2 * sign * h
            f1, f2 = (fp if sign > 0 else fm), at(x2)
            step = x1 - xi
            if math.isfinite(f2):
                num_flat[i] = (-3.0 * f0 + 4.0 * f1 - f2) / (2.0 * step)
            else:
                num_flat[i] = (f1 - f0) / step
            one_sided += 1
        else:
            skipped += 1
            continue
        chk_flat[i] = True
    return InputCheck(name, x.shape, analytic, numeric, checked, one_sided=one_sided,
                      skipped=skipped + (flat_x.size - len(indices)), kinks=kinks)


def _kink(at, xi: float, h: float, f0: float, fp: float, fm: float) -> tuple[float, float] | None:
    """(left slope, right slope) when ``xi`` is a kink: the slopes jump by the same amount at
    steps h and h/2 (a smooth function's one-sided slopes differ by about f''·h: half as much)."""
    left, right = (f0 - fm) / h, (fp - f0) / h
    jump = right - left
    if abs(jump) <= 1e-4 * max(1.0, abs(left), abs(right)):
        return None
    half = h / 2
    fp2, fm2 = at(xi + half), at(xi - half)
    if not (math.isfinite(fp2) and math.isfinite(fm2)):
        return None
    left2, right2 = (f0 - fm2) / half, (fp2 - f0) / half
    jump2 = right2 - left2
    if jump2 * jump <= 0 or abs(jump2) < 0.75 * abs(jump):
        return None
    return left2, right2
