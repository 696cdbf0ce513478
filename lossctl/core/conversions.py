"""Prediction-kind conversions, each with its vector-Jacobian product.

A loss declares its native kind; these turn the other kinds into it where the
math is defined. Arrays are in the canonical layout: the class axis is 1, or
0 for a 1-D array. The ``vjp`` is what PyTorch's autograd does for the same
composition (``log_softmax`` backward: ``g − softmax·Σg``; ``log`` backward:
``g / p``).
"""

from __future__ import annotations

import numpy as np

from .numerics import log_softmax, softmax
from .registry import Conversion, Step


def class_axis(a: np.ndarray) -> int:
    return 1 if a.ndim >= 2 else 0


def _log_softmax(x: np.ndarray) -> np.ndarray:
    return log_softmax(x, axis=class_axis(x))


def _log_softmax_vjp(x: np.ndarray, lp: np.ndarray, g: np.ndarray) -> np.ndarray:
    # d/dx_k Σ_c g_c·lp_c = g_k − softmax_k·Σ_c g_c   (torch's log_softmax_backward)
    return g - np.exp(lp) * np.sum(g, axis=class_axis(x), keepdims=True)


def _log_softmax_steps(x: np.ndarray) -> list[Step]:
    """x: (rows, C). The walk from logits to log-probabilities, step by step."""
    m = np.max(x, axis=1, keepdims=True)
    shifted = x - m
    e = np.exp(shifted)
    s = np.sum(e, axis=1, keepdims=True)
    lse = m + np.log(s)
    return [
        Step("logits", "x", x),
        Step("max", "m = max_c x_c", m[:, 0]),
        Step("shifted logits", "x − m", shifted),
        Step("exp", "exp(x − m)", e),
        Step("sum", "S = Σ_c exp(x_c − m)", s[:, 0]),
        Step("log-sum-exp", "lse = m + log S", lse[:, 0]),
        Step("softmax", "p = exp(x − m) / S", softmax(x, axis=1)),
        Step("log-softmax", "log p = x − lse", log_softmax(x, axis=1)),
    ]


def _log(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(p)


def _log_vjp(p: np.ndarray, lp: np.ndarray, g: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(g == 0, 0.0, g / p).astype(g.dtype, copy=False)


def _log_steps(p: np.ndarray) -> list[Step]:
    return [Step("probabilities", "p", p), Step("log-probabilities", "log p", _log(p))]


LOGITS_TO_LOG_PROBS = Conversion(
    "logits", "log_probs", "log p = log_softmax(x) over the class dimension",
    _log_softmax, _log_softmax_vjp, _log_softmax_steps, along_classes=True,
)
PROBS_TO_LOG_PROBS = Conversion(
    "probs", "log_probs", "log p (no clamp: log 0 = −inf, as torch.log)",
    _log, _log_vjp, _log_steps,
)

__all__ = ["LOGITS_TO_LOG_PROBS", "PROBS_TO_LOG_PROBS", "class_axis", "softmax"]
