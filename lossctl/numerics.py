"""Numerically stable kernels: pure NumPy, no I/O.

Every loss in lossctl is built from these. Each function states the identity
it relies on; none of them forms ``log(softmax(x))``, ``log(1 - sigmoid(x))``
or ``exp`` before ``log`` where a cancellation-free form exists.

Accuracy: for finite float64 input the results below are within a few ulp of
the exact value (tested against mpmath at 50 digits), and logits up to
±1e300 give finite results wherever the mathematical value is finite. The one
documented limit is :func:`logsumexp` when its *result* is close to zero while
its largest input is not (``m + log1p(s)`` cancels); the absolute error there
is still at most a few ulp of ``max(x)``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "logsumexp",
    "log_softmax",
    "softmax",
    "log_sigmoid",
    "softplus",
    "sigmoid",
    "xlogy",
    "log1mexp",
    "sum_to_shape",
]


def _shifted(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(m, d, d_lo, s)`` with ``m = max(x)``, ``d + d_lo = x - m`` exactly
    and ``s = Σ exp(x - m) - 1``.

    ``s`` is the sum of the exponentials *without* the maximum's own ``exp(0) = 1``
    so that callers can use ``log1p(s)``: exact to the last bit when one term
    dominates, which is the case that matters (confident predictions).
    ``d = fl(x - m)`` is rounded, and ``exp`` turns that absolute error of up to
    ``|x - m|·2⁻⁵³`` into a *relative* one (hundreds of ulp for gaps of ~700),
    so ``d_lo`` is the rounding error, recovered exactly by TwoSum (Knuth), and
    ``exp(x - m) = exp(d)·(1 + d_lo)`` up to ``d_lo²/2``.
    Rows whose maximum is ±inf are shifted by 0 instead, so that an all ``-inf``
    row gives ``-inf`` and a ``+inf`` entry gives ``+inf``/NaN as in PyTorch.
    """
    idx = np.argmax(x, axis=axis, keepdims=True)
    m = np.take_along_axis(x, idx, axis=axis)
    m = np.where(np.isfinite(m), m, 0.0).astype(x.dtype, copy=False)
    with np.errstate(over="ignore", invalid="ignore"):
        d = x - m
        # TwoSum(x, -m): d + d_lo == x - m exactly (0 where d is ±inf or NaN).
        x_part = d - (d - x)
        d_lo = (x - x_part) - (m + (d - x))
        d_lo = np.where(np.isfinite(d_lo), d_lo, 0.0).astype(x.dtype, copy=False)
        e = _exp_sum(d, d_lo)
    # Σ_{j ≠ argmax} exp(x_j − m): leave out the maximum's own exp(0) = 1 instead
    # of summing it in and subtracting 1 after, which would lose every term
    # below 1e-16 (the confident rows that matter most).
    np.put_along_axis(e, idx, 0.0, axis=axis)
    s = _sum(e, axis)
    # A row whose maximum is -inf (all -inf) or +inf: keep PyTorch's -inf / NaN.
    s = np.where(np.isfinite(np.take_along_axis(x, idx, axis=axis)), s,
                 np.where(np.take_along_axis(x, idx, axis=axis) == -np.inf, -1.0, np.nan)).astype(x.dtype, copy=False)
    return m, d, d_lo, s


def _sum(e: np.ndarray, axis: int) -> np.ndarray:
    """Σ e along ``axis`` (keepdims), pairwise with TwoSum-compensation at every level.

    A plain ``np.sum`` of n terms is off by up to ~log₂(n)–n/8 ulp (4+ ulp for
    [40] + [0]·206); here the rounding error of each pairwise addition is kept
    exactly and added back at the end, so the sum is good to ~1 ulp for any n.
    """
    e = np.moveaxis(e, axis, -1)
    err = np.zeros(e.shape[:-1], dtype=e.dtype)
    with np.errstate(invalid="ignore"):  # inf - inf in +inf rows, which end up NaN anyway
        while e.shape[-1] > 1:
            if e.shape[-1] % 2:
                e = np.concatenate([e, np.zeros_like(e[..., :1])], axis=-1)
            a, b = e[..., 0::2], e[..., 1::2]
            e = a + b
            b_part = e - a  # TwoSum(a, b): a + b == e + ((a - (e - b_part)) + (b - b_part))
            err += np.sum((a - (e - b_part)) + (b - b_part), axis=-1)
    return np.expand_dims(e[..., 0] + err, axis)


def _exp_sum(d: np.ndarray, d_lo: np.ndarray) -> np.ndarray:
    """exp(d + d_lo) for |d_lo| ≤ ulp(d)/2, as exp(d) + exp(d)·d_lo (error ≈ d_lo²/2)."""
    e = np.exp(d)
    with np.errstate(invalid="ignore"):  # exp(d) = inf only in +inf rows, which end up NaN/inf anyway
        return e + e * d_lo


def logsumexp(x: np.ndarray, axis: int = -1, keepdims: bool = False) -> np.ndarray:
    """log Σ_i exp(x_i), computed as ``m + log1p(Σ_i exp(x_i − m) − 1)``, m = max x.

    Mirrors ``torch.logsumexp`` / ``scipy.special.logsumexp``.
    An all ``-inf`` slice gives ``-inf``; a ``+inf`` entry gives ``+inf``.
    """
    x = np.asarray(x)
    if x.shape[axis] == 0:
        out = np.full(np.delete(x.shape, axis if axis >= 0 else x.ndim + axis), -np.inf, dtype=x.dtype)
        return np.expand_dims(out, axis) if keepdims else out
    m, _, _, s = _shifted(x, axis)
    with np.errstate(divide="ignore", invalid="ignore"):  # all -inf rows: s = -1, log1p(-1) = -inf
        out = m + np.log1p(s)
    # A +inf entry: the sum is +inf (the shifted form above gives inf - inf = NaN).
    out = np.where(np.max(x, axis=axis, keepdims=True) == np.inf, np.inf, out).astype(x.dtype, copy=False)
    return out if keepdims else np.squeeze(out, axis=axis)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """log softmax(x)_i = (x_i − m) − log1p(Σ_j exp(x_j − m) − 1), m = max x.

    Both terms are ≤ 0 and ≥ 0 respectively, so the subtraction never cancels:
    each entry is accurate to a few ulp of its own magnitude, even for logits
    of ±1e300 or gaps of 1e-15. Mirrors ``torch.log_softmax``.
    """
    x = np.asarray(x)
    if x.shape[axis] == 0:
        return np.empty_like(x)
    _, d, d_lo, s = _shifted(x, axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (d - np.log1p(s)) + d_lo


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """softmax(x)_i = exp(x_i − m) / Σ_j exp(x_j − m), m = max x.  Mirrors ``torch.softmax``."""
    x = np.asarray(x)
    if x.shape[axis] == 0:
        return np.empty_like(x)
    _, d, d_lo, s = _shifted(x, axis)
    with np.errstate(invalid="ignore"):
        return _exp_sum(d, d_lo) / (s + 1.0)


def softplus(x: np.ndarray) -> np.ndarray:
    """softplus(x) = log(1 + eˣ) = max(x, 0) + log1p(exp(−|x|)).  Never overflows."""
    x = np.asarray(x)
    with np.errstate(invalid="ignore"):  # -|±inf| = -inf is fine; inf - inf only for nan input
        return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    """log σ(x) = −softplus(−x) = min(x, 0) − log1p(exp(−|x|)).

    Mirrors ``torch.nn.functional.logsigmoid``; ``log(1 − σ(x)) = log_sigmoid(−x)``.
    """
    x = np.asarray(x)
    with np.errstate(invalid="ignore"):
        return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1 / (1 + e⁻ˣ), evaluated without overflow on either side.

    For x ≥ 0: 1 / (1 + e^(−x)); for x < 0: eˣ / (1 + eˣ). Both forms only
    exponentiate a non-positive number.
    """
    x = np.asarray(x)
    e = np.exp(-np.abs(x))
    with np.errstate(invalid="ignore"):
        return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


def xlogy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x·log(y), with the convention 0·log(y) = 0 for any y that is not NaN.

    Mirrors ``torch.xlogy`` / ``scipy.special.xlogy``: ``xlogy(0, 0) = 0`` and
    ``xlogy(0, inf) = 0``; NaN in ``y`` propagates.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    with np.errstate(divide="ignore", invalid="ignore"):
        prod = x * np.log(y)
    return np.where((x == 0) & ~np.isnan(y), np.zeros_like(prod), prod)


def log1mexp(a: np.ndarray) -> np.ndarray:
    """log(1 − eᵃ) for a ≤ 0, switching between log(−expm1(a)) and log1p(−eᵃ) at −ln 2.

    (Mächler 2012, "Accurately computing log(1 − exp(−|a|))".)
    """
    a = np.asarray(a)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a > -np.log(2.0), np.log(-np.expm1(a)), np.log1p(-np.exp(a)))


def sum_to_shape(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a broadcast gradient back to ``shape`` (the adjoint of ``np.broadcast_to``)."""
    g = np.asarray(g)
    lead = g.ndim - len(shape)
    if lead > 0:
        g = np.sum(g, axis=tuple(range(lead)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return np.sum(g, axis=axes, keepdims=True) if axes else g
