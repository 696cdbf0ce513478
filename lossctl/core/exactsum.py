"""Exact, mergeable sums of float64 values: the correctly rounded sum of any multiset.

``exact_sum(x)`` is ``round(Σ x_i)``: the exact real sum of the values rounded once
to the nearest float64 (ties to even), whatever their order and however they were cut
into blocks. Sums are carried in an *accumulator state*, a small int64 array that
holds the exact sum as a fixed-point integer, so states from blocks, threads, processes
or machines merge exactly (``merge``) and are rounded once at the end (``finalize``).

State (``STATE_SIZE`` = ``NBINS + 5`` int64 values):

- ``state[:NBINS]`` — bins: the finite part of the sum is exactly
  ``Σ_k state[k] · 2^(32k − 1074)`` (2^−1074 is the smallest subnormal, so every
  float64 is an integer in these units). A bin may hold any int64 (negative too) as
  long as the additions into it do not overflow; :func:`normalize` carries every bin
  but the last into [0, 2^32) (and keeps |bin| < 2^33 after further additions).
- ``state[NAN]``, ``state[POS_INF]``, ``state[NEG_INF]`` — how many NaN, +inf, −inf
  values were added (zero means none; any positive number means some);
- ``state[TERMS]`` — how many values were added (zero means none);
- ``state[NOT_NEG_ZERO]`` — positive when some value added was not −0.0.

The rounded sum follows IEEE addition: NaN when a NaN or both infinities were added;
±inf when one infinity was; otherwise the exact sum of the finite values rounded once
(±inf when that rounds beyond the largest float64, as a correctly rounded sum would,
not the order-dependent overflow of a running sum); a zero sum is −0.0 only when every
value added was −0.0 (and +0.0 for no values at all).

Method: each block of finite values is split by error-free transformations
(``q = fl(fl(σ + p) − σ)``, ``p ← p − q`` with σ a power of two at least 2·n·max|p|: every
q_i is a multiple of 2^(log₂σ − 53) and their sum, at most σ, is exact in any order;
Rump, Ogita & Oishi's ExtractVector), a few sweeps of a handful of vectorised passes;
the sweeps' exact sums and whatever remainder is left after them are added into the
bins by splitting each value's integer significand into 32-bit chunks aligned to the
bins (``np.bincount``, exact while each bin's partial sum stays below 2^53).
"""

from __future__ import annotations

import math

import numpy as np

# 2^-1074 · 2^(32k) for k < NBINS covers every float64 (bits 0..2097 of the fixed point)
# and leaves two bins of headroom for carries: sums of up to 2^62 values of any size.
NBINS = 68
NAN, POS_INF, NEG_INF, TERMS, NOT_NEG_ZERO = range(NBINS, NBINS + 5)
STATE_SIZE = NBINS + 5

_CHUNK = 1 << 16  # values per sweep: a few cache-resident passes each
_BINCOUNT_ROWS = 1 << 19  # per np.bincount call: |partial| ≤ 2^19 · 2^33 < 2^53, exact in float64
_SWEEPS = 3
_M32 = np.uint64(0xFFFFFFFF)
_FRAC = np.uint64((1 << 52) - 1)
_HIDDEN = np.uint64(1 << 52)


def zeros() -> np.ndarray:
    """The state of an empty sum."""
    return np.zeros(STATE_SIZE, dtype=np.int64)


def accumulate(values, state: np.ndarray | None = None) -> np.ndarray:
    """Add the values (any shape; cast to float64, exactly for float16/float32) into ``state``
    (a new state when None); returns the state."""
    if state is None:
        state = zeros()
    x = np.asarray(values)
    if x.dtype != np.float64:
        x = x.astype(np.float64)
    x = x.reshape(-1)
    n = x.size
    if n == 0:
        return state
    state[TERMS] += n
    for i in range(0, n, _CHUNK):
        _add_chunk(state, x[i:i + _CHUNK])
    return normalize(state)


def merge(*states: np.ndarray) -> np.ndarray:
    """The state of the union of the multisets summed by ``states`` (a new array). Each state's
    bins must stay below 2^62 in magnitude (a normalised state's are below 2^33)."""
    out = zeros()
    for s in states:
        out += s
        normalize(out)
    return out


def merge_into(state: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Add the sum of ``other`` into ``state`` (in place; both normalised, as :func:`merge`
    keeps them); returns ``state``."""
    state += other
    return normalize(state)


def normalize(state: np.ndarray) -> np.ndarray:
    """Carry each bin but the last into [0, 2^32) (in place; the exact value is unchanged)."""
    bins = state[:NBINS]
    carry = bins[:-1] >> 32  # floor division by 2^32, also for negative bins
    bins[:-1] -= carry << 32
    bins[1:] += carry
    return state


def exact_value(state: np.ndarray) -> int:
    """The finite part of the sum as an integer number of 2^−1074 (an exact Python int)."""
    total = 0
    for k in range(NBINS - 1, -1, -1):
        total = (total << 32) + int(state[k])
    return total


def finalize(state: np.ndarray) -> float:
    """The sum rounded once to the nearest float64 (ties to even)."""
    if state[NAN] or (state[POS_INF] and state[NEG_INF]):
        return math.nan
    if state[POS_INF]:
        return math.inf
    if state[NEG_INF]:
        return -math.inf
    total = exact_value(state)
    if total == 0:
        return -0.0 if state[TERMS] and not state[NOT_NEG_ZERO] else 0.0
    try:
        # int / int is correctly rounded in CPython (subnormal results included)
        return total / (1 << 1074)
    except OverflowError:
        return math.inf if total > 0 else -math.inf


def exact_sum(values) -> float:
    """The correctly rounded float64 sum of ``values``.

    >>> exact_sum([1e100, 1.0, -1e100])
    1.0
    >>> exact_sum([0.1] * 10) == 1.0, sum([0.1] * 10) == 1.0
    (True, False)
    """
    return finalize(accumulate(values))


# -- one chunk ---------------------------------------------------------------------------------


def _add_chunk(state: np.ndarray, p: np.ndarray) -> None:
    with np.errstate(invalid="ignore"):
        hi = float(p.max())
        lo = float(p.min())
    big = max(hi, -lo)
    if not math.isfinite(big):  # NaN or ±inf among the values (or the max is one)
        nan = np.isnan(p)
        pos = p == math.inf
        neg = p == -math.inf
        state[NAN] += int(np.count_nonzero(nan))
        state[POS_INF] += int(np.count_nonzero(pos))
        state[NEG_INF] += int(np.count_nonzero(neg))
        p = p[~(nan | pos | neg)]
        if p.size == 0:
            return
        big = max(float(p.max()), -float(p.min()))
    if big == 0:
        if not np.signbit(p).all():
            state[NOT_NEG_ZERO] += 1
        return
    state[NOT_NEG_ZERO] += 1
    width = (p.size - 1).bit_length() + 1  # σ ≥ 2·n·max|p|
    totals = []
    r = p
    q = np.empty_like(p)
    for _ in range(_SWEEPS):
        s = max(math.frexp(big)[1] + width, -1021)  # spacing 2^(s−53) ≥ 2^−1074
        if s > 1023:
            break  # σ would overflow: the bins take these values directly
        sigma = math.ldexp(1.0, s)
        np.add(r, sigma, out=q)
        q -= sigma
        totals.append(float(np.add.reduce(q)))  # exact: multiples of 2^(s−53), |Σ| ≤ σ
        if r is p:
            r = p - q
        else:
            r -= q
        big = max(float(r.max()), -float(r.min()))
        if big == 0:
            break
    if big != 0:
        _add_bits(state, r[r != 0])
    for t in totals:
        _add_float(state, t)


def _add_float(state: np.ndarray, v: float) -> None:
    """Add one finite float64 into the bins (the sweeps' few exact sums: cheaper than arrays)."""
    num, den = v.as_integer_ratio()  # den = 2^d with d ≤ 1074
    i = num << (1075 - den.bit_length())  # v in units of 2^−1074
    if i == 0:
        return
    sign = -1 if i < 0 else 1
    i = abs(i)
    k = ((i & -i).bit_length() - 1) >> 5
    i >>= 32 * k
    while i:
        state[k] += sign * (i & 0xFFFFFFFF)
        i >>= 32
        k += 1


def _add_bits(state: np.ndarray, x: np.ndarray) -> None:
    """Add finite float64 values into the bins: the significand m (value = ±m·2^(shift−1074))
    is cut at the bin boundaries into three chunks below 2^33."""
    u = np.ascontiguousarray(x, dtype=np.float64).view(np.uint64)
    e = (u >> np.uint64(52)) & np.uint64(0x7FF)
    normal = (e != 0).astype(np.uint64)
    m = (u & _FRAC) | (normal << np.uint64(52))
    shift = e - normal  # subnormals: value = m·2^−1074 as for biased exponent 1
    k = (shift >> np.uint64(5)).astype(np.intp)
    r = shift & np.uint64(31)
    a = (m & _M32) << r
    b = (m >> np.uint64(32)) << r
    chunks = (a & _M32, (a >> np.uint64(32)) + (b & _M32), b >> np.uint64(32))
    negative = (u >> np.uint64(63)).astype(bool)
    bins = state[:NBINS]
    for i in range(0, x.size, _BINCOUNT_ROWS):
        kk = k[i:i + _BINCOUNT_ROWS]
        neg = negative[i:i + _BINCOUNT_ROWS]
        for j, c in enumerate(chunks):
            w = c[i:i + _BINCOUNT_ROWS].astype(np.float64)
            np.negative(w, out=w, where=neg)
            counted = np.bincount(kk, weights=w, minlength=NBINS - 2)
            bins[j:j + counted.size] += counted.astype(np.int64)
        normalize(state)
