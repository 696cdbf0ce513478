"""Central finite differences of a lossctl call: the independent check of every analytic gradient.

Written here, apart from ``lossctl.gradcheck``, so that a bug in the product's own gradient
checker cannot hide a bug in a gradient.
"""

from __future__ import annotations

import numpy as np

import lossctl


def central_difference_of(f, x, h: float = 1e-6, *, relative: bool = True) -> np.ndarray:
    """df/dx of a scalar function by central differences; the step is ``h·max(1, |x|)``
    per element (``h`` itself with ``relative=False``)."""
    base = np.array(x, dtype=np.float64)
    grad = np.zeros_like(base)
    for idx in np.ndindex(base.shape):
        step = h * max(1.0, abs(base[idx])) if relative else h
        up, down = base.copy(), base.copy()
        up[idx] += step
        down[idx] -= step
        grad[idx] = (float(f(up)) - float(f(down))) / (2 * step)
    return grad


def central_difference(call: dict, name: str, h: float = 1e-6) -> np.ndarray:
    """d(Σ loss)/d(call[name]) for a lossctl call, by central differences."""
    return central_difference_of(
        lambda v: np.sum(lossctl.compute({**call, name: v}, grad=False).loss), call[name], h)
