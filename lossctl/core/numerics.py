"""Numerically stable kernels: pure NumPy, no I/O.

Every loss in lossctl is built from these. Each function states the identity
it relies on; none of them forms ``log(softmax(x))``, ``log(1 - sigmoid(x))``
or ``exp`` before ``log`` where a cancellation-free form exists.

Accuracy: for finite float64 input the results below are within a few ulp of
the exact value (tested against mpmath at 50 digits), and logits up to
±1e300 give finite results wherever the mathematical value is finite. The one
documented limit is :func:`logsumexp` when its *result* is close to zero while
its largest input is not (``m + log1p(s)`` cancels); the absolute error there
is still at most a few ulp of ``max(x)``. The other is gradual underflow: a
result below about n·1e-308 (n entries along the axis) is a sum of terms
``exp(x_j − m)`` that each underflowed to a subnormal on their own, so its
absolute error can reach half a unit of 2⁻¹⁰⁷⁴ (5e-324) per term.
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
    """Σ e along ``axis`` (keepdims) for e ≥ 0, correctly rounded up to ~n³u² relative.

    A plain ``np.sum`` of n terms is off by up to ~log₂(n)–n/8 ulp (4+ ulp for
    [40] + [0]·206). This is one step of Rump–Ogita–Oishi's AccSum: with
    σ = 2^k ≥ 2(n+2)·ŝ (ŝ a first estimate of the sum, so σ bounds every term
    with room to spare), ``hi = (e + σ) − σ`` keeps the leading bits of each
    term on a common grid, so Σ hi is *exact* in any order, and ``lo = e − hi``
    is exact too (Fast2Sum). Only the tiny Σ lo is rounded, far below an ulp
    of the result; the final ``Σ hi + Σ lo`` rounds once. Six vectorised
    passes, no Python loop and no temporaries larger than ``e``.
    """
    n = e.shape[axis]
    with np.errstate(invalid="ignore", over="ignore"):  # inf/NaN rows (±inf maxima) are replaced by the caller
        estimate = np.sum(e, axis=axis, keepdims=True)
        if n <= 1:
            return estimate
        _, exponent = np.frexp(estimate)  # estimate ≤ 2^exponent (0 for 0, inf, NaN)
        sigma = np.ldexp(np.ones((), dtype=e.dtype), exponent + (2 * (n + 2)).bit_length())
        hi = e + sigma
        hi -= sigma
        lo = e - hi
        return np.sum(hi, axis=axis, keepdims=True) + np.sum(lo, axis=axis, keepdims=True)


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


# -- row kernels for the streaming engine ------------------------------------------------------
#
# The same arithmetic as _shifted/_sum (so the results are bitwise those of log_softmax),
# for a 2-D block with classes on axis 1, computing only what a reduction needs and
# reusing per-thread scratch buffers: in this VM a fresh 2 MB temporary costs as much in
# page faults as the arithmetic on it.

_SCRATCH = __import__("threading").local()


def _scratch(slot: int, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A per-thread reusable buffer (contents undefined)."""
    bufs = getattr(_SCRATCH, "bufs", None)
    if bufs is None:
        bufs = _SCRATCH.bufs = {}
    size = int(np.prod(shape))
    key = (slot, np.dtype(dtype).str)
    buf = bufs.get(key)
    if buf is None or buf.size < size:
        buf = bufs[key] = np.empty(max(size, 1), dtype=dtype)
    return buf[:size].reshape(shape)


def float32_shift_is_exact(x: np.ndarray) -> bool:
    """Whether ``x − m`` is exact in float64 for every pair of entries of ``x``, where ``x``
    holds float32 values (e.g. a float32 file computed in float64).

    Two float32 numbers whose exponents differ by at most 28 have a difference with at
    most 53 significant bits; that holds for every pair when max|x| < 2²⁷·min|x| over
    the nonzero entries (and 0 − m = −m is always exact). Then TwoSum's correction
    ``d_lo`` is 0 and can be skipped. Three cheap passes; False for non-finite input.
    """
    if x.size == 0:
        return True
    a = np.abs(x, out=_scratch(9, x.shape, x.dtype))
    hi = a.max()
    if not np.isfinite(hi):
        return False
    lo = a.min()
    if lo == 0:
        lo = np.min(a, where=a > 0, initial=np.inf)
    return bool(hi < lo * 2.0 ** 27)


def log_softmax_at(x: np.ndarray, index: np.ndarray, *, accurate: bool = True,
                   float32_values: np.ndarray | None = None) -> np.ndarray:
    """``log_softmax(x, axis=1)[n, index[n]]`` for a 2-D ``x`` without forming the (N, C)
    result: one max, one ``exp`` pass and the sum per row.

    ``accurate`` (per-sample values are an output): bit for bit :func:`log_softmax`'s entries
    (the same shift, TwoSum correction and AccSum row sum, up to ~n³u² in the sum).

    ``accurate=False`` (only a mean or sum of the values is wanted): the row sums
    ``s = Σ_{j≠argmax} exp(x_j − m)`` are computed as ``exp(−m)·Σ_{j≠argmax} exp(x_j)`` with a
    plain ``einsum`` where the block's values lie in [−700, 700] (no overflow or underflow
    there): no (N, C) subtraction, no correction, each term within ~2 ulp, so each value is
    within a few ulp of the accurate one and a mean over many is unaffected (~1e-15).
    The maximum's own term is still left out, so ``log1p(s)`` keeps confident rows exact.

    ``float32_values``: ``x``'s values as float32 (the input before the float64 cast): its
    argmax is cheaper, and with :func:`float32_shift_is_exact` the shift ``x − m`` is exact,
    so TwoSum's correction (then 0) is skipped. Rows with a non-finite maximum take
    :func:`log_softmax` itself.
    """
    x = np.asarray(x)
    n, c = x.shape
    index = np.asarray(index, dtype=np.intp)
    if n == 0 or c == 0:
        return np.take_along_axis(log_softmax(x, axis=1), index[:, None], axis=1)[:, 0]
    narrow = float32_values is not None and float32_values.dtype == np.float32 and x.dtype == np.float64
    rows = _row_starts(n, c)
    at_max = rows + np.argmax(float32_values if narrow else x, axis=1)
    if not x.flags.c_contiguous:
        x = np.ascontiguousarray(x)
    flat = x.reshape(-1)
    m = flat[at_max]
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.isfinite(np.add.reduce(m))  # one call; an overflow only sends us the slow way
    if not finite and not np.all(np.isfinite(m)):
        return np.take_along_axis(log_softmax(x, axis=1), index[:, None], axis=1)[:, 0]
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        probe = float32_values if narrow else x
        if not accurate and -700.0 <= probe.min() and probe.max() <= 700.0:
            e = np.exp(x, out=_scratch(0, x.shape, x.dtype))
            e.reshape(-1)[at_max] = 0.0
            s = np.einsum("ij->i", e) * np.exp(-m)
            # x_y − m without TwoSum's correction (≤ ½ ulp of the value; only a sum is wanted)
            return (flat[rows + index] - m) - np.log1p(s)
        else:
            m_col = m[:, None]
            d = np.subtract(x, m_col, out=_scratch(0, x.shape, x.dtype))
            if narrow and float32_shift_is_exact(float32_values):
                d.reshape(-1)[at_max] = -np.inf  # exp(-inf) = 0: the maximum's own term left out
                e = np.exp(d, out=d)
            else:
                # TwoSum(x, -m) as in _shifted: d_lo = (x - (d - (d - x))) - (m + (d - x))
                t = np.subtract(d, x, out=_scratch(1, x.shape, x.dtype))
                d_lo = np.subtract(d, t, out=_scratch(2, x.shape, x.dtype))
                np.subtract(x, d_lo, out=d_lo)
                t += m_col
                d_lo -= t
                e = np.exp(d, out=t)
                d_lo *= e
                e += d_lo  # exp(d) + exp(d)·d_lo, as _exp_sum
                e.reshape(-1)[at_max] = 0.0
            s = _sum_rows(e) if accurate else np.einsum("ij->i", e)
    picked = flat[rows + index]
    d_y = picked - m
    with np.errstate(invalid="ignore", divide="ignore"):
        lo_y = (picked - (d_y - (d_y - picked))) - (m + (d_y - picked))
        lo_y = np.where(np.isfinite(lo_y), lo_y, 0.0).astype(x.dtype, copy=False)
        return (d_y - np.log1p(s)) + lo_y


def _row_starts(n: int, c: int) -> np.ndarray:
    """``arange(n) * c`` (flat index of each row's first entry), cached per thread."""
    cache = getattr(_SCRATCH, "rows", None)
    if cache is None or cache[0] != c or cache[1].size < n:
        cache = _SCRATCH.rows = (c, np.arange(max(n, 1), dtype=np.intp) * c)
    return cache[1][:n]


def _sum_rows(e: np.ndarray) -> np.ndarray:
    """:func:`_sum` along axis 1 of a contiguous 2-D block (AccSum's one extraction step),
    with scratch buffers; overwrites ``e``. The row sums use ``einsum`` (2-3x faster than
    ``np.sum`` on short rows): Σ hi is exact in any order and the rounding of the tiny Σ lo
    is far below an ulp, so the result is ``_sum``'s up to that (~n³u² relative)."""
    n = e.shape[1]
    estimate = np.einsum("ij->i", e)
    if n <= 1:
        return estimate
    _, exponent = np.frexp(estimate)
    sigma = np.ldexp(np.ones((), dtype=e.dtype), exponent + (2 * (n + 2)).bit_length())[:, None]
    hi = np.add(e, sigma, out=_scratch(3, e.shape, e.dtype))
    hi -= sigma
    lo = np.subtract(e, hi, out=e)
    return np.einsum("ij->i", hi) + np.einsum("ij->i", lo)
