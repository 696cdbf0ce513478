"""Central finite differences of a lossctl call: the independent check of every analytic gradient.

Written here, apart from ``lossctl.gradcheck``, so that a bug in the product's own gradient
checker cannot hide a bug in a gradient.
"""

from __future__ import annotations

import numpy as np

import lossctl


def central_difference(call: dict, name: str, h: float = 1e-6) -> np.ndarray:
    """d(Σ loss)/d(call[name]) by central differences, step ``h·max(1, |x|)`` per element."""
    base = np.array(call[name], dtype=np.float64)
    grad = np.zeros_like(base)
    for idx in np.ndindex(base.shape):
        step = h * max(1.0, abs(base[idx]))
        up, down = base.copy(), base.copy()
        up[idx] += step
        down[idx] -= step
        f_up = float(np.sum(lossctl.compute({**call, name: up}, grad=False).loss))
        f_down = float(np.sum(lossctl.compute({**call, name: down}, grad=False).loss))
        grad[idx] = (f_up - f_down) / (2 * step)
    return grad
